"""The one build step setup.cfg cannot express: install ``tlc_pipeline.pth`` into site-packages.

Luigi reads TOML configuration only when ``LUIGI_CONFIG_PARSER=toml`` is set before it is
imported (luigi#2907). ``luigi --module pipeline ...`` imports Luigi first and our package only
later, so without help it warns about a ``LUIGI_CONFIG_PATH=*.toml`` and sets up logging from
the wrong parser. Python runs a ``.pth`` file's ``import`` line at start-up; ours sets the
variable for exactly that command (``pipeline/tlc_pipeline.pth``) and for nothing else.
Both kinds of install get it: a wheel (``build_py``) and an editable install (``editable_wheel``).
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH_SOURCE = os.path.join("pipeline", "tlc_pipeline.pth")
PTH_NAME = "tlc_pipeline.pth"


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            self.copy_file(PTH_SOURCE, os.path.join(self.build_lib, PTH_NAME), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH_NAME)]


class EditableWheelWithPth(editable_wheel):
    def _create_wheel_file(self, bdist_wheel):  # type: ignore[no-untyped-def]
        from wheel.wheelfile import WheelFile

        path = super()._create_wheel_file(bdist_wheel)
        with WheelFile(path, "a") as wheel:
            wheel.write(PTH_SOURCE, PTH_NAME)
        return path


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
