"""Operators, panels, menus and preferences (the only bpy.types subclasses).

Registration stays light: no torch, timm or network; the depth run imports them in its
worker. Everything registered here is unregistered again, in reverse order.
"""

from __future__ import annotations


def _classes() -> tuple:
    # Imported here, not at the top: ``depth_addon.ui.jobs`` / ``.deps`` stay usable without bpy.
    from . import operators, panels, preferences, properties

    return (*properties.classes, *preferences.classes, *operators.classes, *panels.classes)


def register():
    import bpy

    from . import deps, panels, preferences, properties

    for cls in _classes():
        bpy.utils.register_class(cls)
    properties.register()
    panels.register()
    # torch + timm installed by the preferences' installer live outside the extension's folder.
    deps.add_site_packages(preferences.site_packages_dir())
    deps.missing_modules(refresh=True)


def unregister():
    import bpy

    from ..depth_job import DEPTH_CACHE
    from . import deps, modal, panels, properties

    for job in list(modal.ACTIVE.values()):
        job.cancel()
    modal.ACTIVE.clear()
    DEPTH_CACHE.clear()
    deps.remove_added_site_packages()
    panels.unregister()
    properties.unregister()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
