# the plugin, for a checkout used without installing it (an installed harness loads it by its entry point)
pytest_plugins = ("harness.plugin",)
