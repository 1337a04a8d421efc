"""Import-linter contract types of Dropline's own (registered in ``.importlinter``).

``acyclic_cores`` is import-linter's ``acyclic_siblings`` checked on the graph *without* the
modules named in ``leave_out``. A domain package may keep its endpoints (``api``, ``pages``,
``cli``, ``demo``) beside its core, as Polar keeps ``endpoints.py``; those sit above every core
and may import across domains, so they are taken out of the graph before cycles are looked for
among the cores (packages against packages, and modules inside each package)."""

from __future__ import annotations

import grimp
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.domain import fields
from importlinter.domain.contract import ContractCheck
from importlinter.domain.helpers import module_expressions_to_modules


class AcyclicCoresContract(AcyclicSiblingsContract):
    type_name = "acyclic_cores"

    leave_out = fields.SetField(subfield=fields.ModuleExpressionField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        left_out = module_expressions_to_modules(
            graph, sorted(self.leave_out), raise_if_unmatched=False)  # type: ignore[arg-type]
        for module in sorted({m.name for m in left_out}):
            if module not in graph.modules:
                continue
            for descendant in graph.find_descendants(module):
                graph.remove_module(descendant)
            graph.remove_module(module)
        return super().check(graph, verbose)
