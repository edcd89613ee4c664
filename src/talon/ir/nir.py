"""NIR interoperability: convert between talon.ir Graphs and the Neuromorphic Intermediate Representation.

NIR (the optional `nir` package, `.nir` HDF5 files) is how Norse, Sinabs, Rockpool, Lava, SpiNNaker2,
Xylo and snnTorch exchange spiking networks. The public functions are

    from_nir(nir_graph_or_path, *, dt=None, strip_batch=None) -> Graph
    to_nir(graph, *, dt=None, approximate_resets=False, measure=None) -> nir.NIRGraph
    read_nir(path, *, dt=None, strip_batch=None) -> Graph      write_nir(path, graph, ...) -> None
    is_nir_file(path) -> bool

and the registration points (nir_registry.py) through which every primitive, built-in or a user's, says how
it is written to NIR and read back: register_nir_export, register_nir_import, refuse_nir_export.

`talon.ir.read`/`talon.ir.write` call read_nir/write_nir for `.nir` paths (and read NIR content under
any name). This module never imports `nir` (nor torch) at import time: without `nir` installed, every
conversion raises MissingDependencyError saying `pip install "t1c-talon[nir]"`. This module only gathers
the public names: nir_export.py (TALON -> NIR), nir_import.py (NIR -> TALON), nir_common.py (what both
share), nir_registry.py (the registries), nir_neurons.py and nir_layers.py (the built-in primitives).

Semantics (docs/nir.md has the full table):

* NIR neurons are continuous-time ODEs; TALON runs them discretised by forward Euler with step `dt`,
  stage by stage in graph order: LIF  tau*dv/dt = (v_leak - v) + r*I  becomes
  v = beta*v + (1-beta)*v_leak + gain*I with beta = 1 - dt/tau, gain = dt*r/tau (neurons.py).
* NIR's reset ("v = v_reset when v > v_threshold", applied at once) is TALON's reset_mode "zero" with
  reset_delay=True: TALON keeps the pre-reset membrane and replaces it by v_reset before the next
  integration, which yields the same spikes. subtract and zero_post have no NIR equivalent: to_nir
  raises, unless approximate_resets=True (nir_resets.py) writes NIR's reset with a measured warning.
  reset_mode "none" is exported exactly as LI (or I, CubaLI) followed by Threshold.
* NIR carries no timestep. from_nir takes `dt`, else the `dt` entry of the graph's metadata (written by
  to_nir), else 1e-4 (snnTorch's export convention) with a NIRConversionWarning.
* Several edges into one NIR node are summed. A cycle must pass through exactly one stateful node
  (neuron, Delay, stateful subgraph), whose output reaches the loop one step late.
* What NIR cannot hold (TALON-only types with an exact NIR expression, parameter shapes before
  broadcasting, unset optional fields, node order, dt, metadata) travels in a JSON string under the
  "talon" key of each NIR node's metadata. NIR itself stays complete and correct without it; from_nir
  uses it only after checking that the restored node re-exports to exactly the NIR node it came with.
"""

from talon.ir.nir_common import DEFAULT_DT, NIR_MIN_VERSION, NIRConversionError, NIRConversionWarning
from talon.ir.nir_export import to_nir, write_nir
from talon.ir.nir_import import from_nir, is_nir_file, read_nir, read_nir_hdf5
from talon.ir.nir_registry import (
    NIRExportContext, NIRImportContext, nir_default_type, nir_export_types, nir_import_classes, nir_support, refuse_nir_export,
    register_nir_export, register_nir_import, unregister_nir_export, unregister_nir_import,
)

__all__ = [
    "from_nir", "to_nir", "read_nir", "write_nir", "is_nir_file", "read_nir_hdf5", "DEFAULT_DT", "NIR_MIN_VERSION",
    "NIRConversionError", "NIRConversionWarning", "NIRExportContext", "NIRImportContext", "register_nir_export",
    "register_nir_import", "refuse_nir_export", "unregister_nir_export", "unregister_nir_import", "nir_export_types",
    "nir_import_classes", "nir_default_type", "nir_support",
]
