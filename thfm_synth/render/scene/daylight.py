"""Daylight for the analytic skies (Hosek-Wilkie, Preetham): the sun that goes with the sky.

Blender's Hosek-Wilkie and Preetham sky textures are sky radiance only - no sun - and dim: they put
0.03-2.2 W/m^2 on the ground (`SKY_IRRADIANCE`, measured), while the plan's lamps (50-800 W at 2-6 m)
put 0.1-16 W/m^2 on the person. Every outdoor person under those skies was lit like a night-time
studio and the ground went dark a few metres away. Daylight adds a sun lamp in the sky's sun direction
with normal irradiance `SUN_IRRADIANCE` x the plan's sky strength, and scales the sky to the diffuse
share a real sky of that turbidity has (direct normal / diffuse horizontal irradiance
`dni_over_dhi(T)`: ~7 clear, ~3 hazy, ~1.4 dusty), so the plan's lamps are fills of at most ~0.4 of
the sun. Auto-exposure takes the overall level. The Nishita sky (MULTIPLE_SCATTERING) has its own
physically based sun disc and is left as it is. Pure numpy.
"""

from __future__ import annotations

import numpy as np

SUN_IRRADIANCE = 40.0  # W/m^2 normal to the sun at sky strength 1 (Blender units; exposure is automatic)
SUN_ANGLE_DEG = 0.53  # the sun's angular diameter: shadows as soft as the real sun's

# Irradiance (W/m^2) of the sky texture alone on an upward white Lambertian plane, by sky model and
# turbidity, at sun elevations ELEVATIONS_DEG: Cycles 5.0.1, 256 samples, sky strength 1.
ELEVATIONS_DEG = (5.0, 10.0, 20.0, 35.0, 50.0, 75.0)
SKY_IRRADIANCE = {
    "HOSEK_WILKIE": {
        2.2: (0.1315, 0.2188, 0.3479, 0.5258, 0.6759, 0.7506),
        3.0: (0.1028, 0.1803, 0.3055, 0.4897, 0.6435, 0.6885),
        5.5: (0.0459, 0.0990, 0.2156, 0.3796, 0.4975, 0.3834),
        8.0: (0.0265, 0.0622, 0.1686, 0.3117, 0.3803, 0.3327),
    },
    "PREETHAM": {
        2.2: (1.6096, 1.7328, 1.9349, 2.1336, 2.2143, 2.2394),
        3.0: (0.8037, 0.9366, 1.1592, 1.3975, 1.5338, 1.6577),
        5.5: (0.4791, 0.6698, 0.9786, 1.2909, 1.4605, 1.6020),
        8.0: (0.4362, 0.6942, 1.0931, 1.4574, 1.6164, 1.6985),
    },
}


def dni_over_dhi(turbidity: float) -> float:
    """Direct normal over diffuse horizontal irradiance of a clear-to-dusty sky (fit: 7 at T=2.2,
    2.8 at 5.5, 1.4 at 8)."""
    return float(12.5 * np.exp(-0.27 * float(turbidity)))


def sky_irradiance(model: str, turbidity: float, elevation_deg: float) -> float:
    """`SKY_IRRADIANCE` interpolated (linearly in turbidity and elevation, clamped to the table)."""
    table = SKY_IRRADIANCE[model]
    ts = sorted(table)
    el = float(np.clip(elevation_deg, ELEVATIONS_DEG[0], ELEVATIONS_DEG[-1]))
    per_t = [float(np.interp(el, ELEVATIONS_DEG, table[t])) for t in ts]
    return float(np.interp(float(np.clip(turbidity, ts[0], ts[-1])), ts, per_t))


def sun_direction(elevation_deg: float, azimuth_deg: float) -> np.ndarray:
    """Unit vector towards the sun, as the sky texture places it (azimuth from +X, counter-clockwise)."""
    el, az = np.radians(elevation_deg), np.radians(azimuth_deg)
    return np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def sun_temperature_k(elevation_deg: float) -> float:
    """Warmer near the horizon: 3000 K at the horizon to 5500 K from 30 degrees up."""
    return 3000.0 + 2500.0 * float(np.clip(elevation_deg / 30.0, 0.0, 1.0))


def daylight(model: str, turbidity: float, elevation_deg: float, strength: float) -> tuple[float, float] | None:
    """(sky strength, sun normal irradiance) for an analytic sky, or None (no sun to add: the Nishita
    sky, or the sun below the horizon)."""
    if model not in SKY_IRRADIANCE or elevation_deg <= 0.0:
        return None
    sun = SUN_IRRADIANCE * float(strength)
    return sun / dni_over_dhi(turbidity) / sky_irradiance(model, turbidity, elevation_deg), sun
