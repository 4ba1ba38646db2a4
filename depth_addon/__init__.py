"""depth_addon: turn one photo into textured 3D geometry with MiDaS depth.

Layers (bpy is imported only by the last two):
  depth_addon.midas     inference core (torch/timm imported lazily)
  depth_addon.geometry  depth -> vertices/faces/UVs in numpy
  depth_addon.blender   thin layer: numpy arrays -> Blender datablocks
  depth_addon.ui        operators, panels, menus, preferences

This file must stay importable without Blender: bpy is only touched inside
register()/unregister(), so ``import depth_addon.midas`` works in plain Python.
"""

__version__ = "0.1.0"


def register():
    from . import ui

    ui.register()


def unregister():
    from . import ui

    ui.unregister()
