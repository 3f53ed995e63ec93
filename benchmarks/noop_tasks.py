"""Tasks that do nothing but exist, for benchmarks/hosts.py's measure of luigid's overhead:
the same graph run with the local scheduler and with luigid, the difference is luigid's."""

from __future__ import annotations

from pathlib import Path

import luigi


class Noop(luigi.Task):
    i = luigi.IntParameter()
    folder = luigi.Parameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(Path(self.folder) / f"{self.i}.done"))

    def run(self) -> None:
        Path(self.output().path).touch()


class Noops(luigi.WrapperTask):
    n = luigi.IntParameter()
    folder = luigi.Parameter()

    def requires(self) -> list[Noop]:
        return [Noop(i=i, folder=self.folder) for i in range(self.n)]
