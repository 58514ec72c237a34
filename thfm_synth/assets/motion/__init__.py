"""Motion: BVH input, skeletons and FK, resampling, windows, retargeting, keypoints,
built-in procedural clips and the CMU downloader. Pure numpy/scipy (no Blender).

Modules: quat (quaternion maths, (w, x, y, z)), skeleton (Skeleton, MotionClip, FK),
bvh (reader), resample, window, ground (feet/contacts), retarget, joints (SMPL-24,
H36M-17, COCO-17), builtin_motions, fetch, testing (derived rigs for tests).
"""
