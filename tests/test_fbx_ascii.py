"""The ASCII FBX reader (blender_scripts/fbx_ascii.py) in the main environment: transforms, units,
axes, polygons, UVs and materials from a file written here with known answers, and the Kenney kit."""

from __future__ import annotations

import numpy as np
import pytest

from blender_scripts import fbx_ascii

# A unit quad (two triangles' worth of corners as one n-gon plus a triangle) under a parent with
# a translation, a child rotation of 90 deg about Z (RotationOrder XYZ), scale 2, in a file whose
# axis system is Y up / Z front (the FBX default) and whose unit is centimetres.
FILE = """; FBX 7.3.0 project file
GlobalSettings:  {
	Properties70:  {
		P: "UpAxis", "int", "Integer", "",1
		P: "UpAxisSign", "int", "Integer", "",1
		P: "FrontAxis", "int", "Integer", "",2
		P: "FrontAxisSign", "int", "Integer", "",1
		P: "CoordAxis", "int", "Integer", "",0
		P: "CoordAxisSign", "int", "Integer", "",1
		P: "UnitScaleFactor", "double", "Number", "",1
	}
}
Objects:  {
	Geometry: 100, "Geometry::quad", "Mesh" {
		Vertices: *15 {
			a: 0,0,0,1,0,0,1,1,0,0,1,0,0.5,0.5,1
		}
		PolygonVertexIndex: *7 {
			a: 0,1,2,-4,0,1,-5
		}
		LayerElementUV: 0 {
			MappingInformationType: "ByPolygonVertex"
			ReferenceInformationType: "IndexToDirect"
			UV: *8 {
				a: 0,0,1,0,1,1,0,1
			}
			UVIndex: *7 {
				a: 0,1,2,3,0,1,2
			}
		}
		LayerElementMaterial: 0 {
			MappingInformationType: "ByPolygon"
			ReferenceInformationType: "IndexToDirect"
			Materials: *2 {
				a: 1,0
			}
		}
	}
	Model: 200, "Model::parent", "Null" {
		Properties70:  {
			P: "Lcl Translation", "Lcl Translation", "", "A",10,20,30
		}
	}
	Model: 300, "Model::child", "Mesh" {
		Properties70:  {
			P: "Lcl Rotation", "Lcl Rotation", "", "A",0,0,90
			P: "Lcl Scaling", "Lcl Scaling", "", "A",2,2,2
		}
	}
	Material: 400, "Material::red", "" {
		Properties70:  {
			P: "DiffuseColor", "Color", "", "A",1,0,0
		}
	}
	Material: 401, "Material::blue", "" {
		Properties70:  {
			P: "DiffuseColor", "Color", "", "A",0,0,1
		}
	}
}
Connections:  {
	C: "OO",300,200
	C: "OO",100,300
	C: "OO",400,300
	C: "OO",401,300
}
"""


def test_transforms_units_axes_polygons_uvs_and_materials(tmp_path):
    path = tmp_path / "quad.fbx"
    path.write_text(FILE)
    assert fbx_ascii.is_ascii_fbx(path)
    (mesh,) = fbx_ascii.read_meshes(path)
    assert mesh["name"] == "child"
    local = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 1]], float)
    rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], float)  # +90 deg about the file's Z
    in_file = (local * 2) @ rz.T + [10, 20, 30]  # child scale, rotation, then the parent's translation
    # file axes (X right, Y up, Z front) -> Blender (X right, Z up, -Y front); centimetres -> metres
    expected = np.stack([in_file[:, 0], -in_file[:, 2], in_file[:, 1]], axis=1) * 0.01
    np.testing.assert_allclose(mesh["vertices"], expected, atol=1e-12)
    np.testing.assert_array_equal(mesh["corner_vert"], [0, 1, 2, 3, 0, 1, 4])
    np.testing.assert_array_equal(mesh["loop_starts"], [0, 4])
    np.testing.assert_allclose(mesh["uv"], [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [1, 1]])
    assert [m["name"] for m in mesh["materials"]] == ["red", "blue"]
    assert mesh["materials"][0]["color"] == [1.0, 0.0, 0.0]
    np.testing.assert_array_equal(mesh["material_index"], [1, 0])
    assert not mesh["mirrored"]


def test_a_file_without_objects_is_refused(tmp_path):
    path = tmp_path / "empty.fbx"
    path.write_text("; FBX 7.3.0 project file\nFBXHeaderExtension:  {\n}\n")
    with pytest.raises(ValueError, match="no Objects section"):
        fbx_ascii.read_meshes(path)


def test_the_kenney_kit_pieces_read_in_metres(shared_assets):
    kit = shared_assets / "scenes" / "kenney_furniture_kit"
    floor = fbx_ascii.read_meshes(kit / "floorFull.fbx")
    v = np.concatenate([m["vertices"] for m in floor])
    extent = v.max(0) - v.min(0)
    # a 10-unit floor tile: thin in z, square in x/y (the kit is scaled to 2 m tiles by kit_pieces)
    assert extent[2] < 0.2 * extent[0] and extent[0] == pytest.approx(extent[1], rel=1e-3)
    for piece in sorted(kit.glob("*.fbx")):
        meshes = fbx_ascii.read_meshes(piece)
        assert meshes, piece.name
        for m in meshes:
            assert np.isfinite(m["vertices"]).all() and m["corner_vert"].max() < len(m["vertices"])
            assert m["loop_starts"][0] == 0 and np.all(np.diff(m["loop_starts"]) >= 3)
