"""Operators, panels, menus and preferences (the only bpy.types subclasses)."""

_classes = ()


def register():
    import bpy

    for cls in _classes:
        bpy.utils.register_class(cls)


def unregister():
    import bpy

    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
