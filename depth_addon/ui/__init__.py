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
    preferences.apply_weights_folder()


def unregister():
    import bpy

    from ..midas.weights import set_default_weights_dir
    from . import deps, jobs, panels, properties

    for job in list(jobs.ACTIVE.values()):
        job.cancel()
    jobs.ACTIVE.clear()
    jobs.DEPTH_CACHE.clear()
    set_default_weights_dir(None)
    deps.remove_added_site_packages()
    panels.unregister()
    properties.unregister()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
