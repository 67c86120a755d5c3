"""Data-set-scale UAE generation: chunked, streamed, resumable, checksummed, optionally on many processes.

``generate_dataset(attack, data, out_dir)`` attacks ``data`` chunk by chunk
and writes one file per chunk plus ``manifest.json``:

    out_dir/chunk-00000.pt   {"adv", "success", "mi", "gap", "index"[, "rest"]}  (torch.save of tensors only)
    out_dir/manifest.json    {"format", "fingerprint": {"config", "model", "model_sha256", "data", "chunk_size"},
                              "n", "chunks": {"0": {"file", "sha256", "rows", "input_sha256"}}}

``data`` is a tensor or a map-style Dataset of ``x`` or ``(x, *rest)`` items, read chunk by chunk
(:mod:`.sources`); :class:`UAEDataset` reads a finished run back lazily, with the data's item structure.

Sample ``i`` is attacked with ``index=i``, so its UAE is the same whatever the
chunking, the number of processes and however often the run is interrupted.
Each file is written to a temporary file and moved into place with
``os.replace`` (atomic), so a killed run leaves no partial file that a later
run would trust; the temporary files such a kill leaves behind
(``.<name>.<random>.tmp``) are deleted when the next run starts. On a rerun, a
chunk is kept only if its file's SHA-256 matches the manifest; a missing chunk
is generated, a corrupted one is regenerated with a warning naming the file,
and one whose input rows no longer have the digest recorded for them
(``input_sha256``, checked when the chunk's rows are read) is regenerated with a
warning: nothing stale is reused. More rows than the last run extend it.
Memory stays flat: only one chunk of data and results is held at a time.

On a torch.distributed process group (``torchrun``; every rank calls
``generate_dataset`` with the same arguments and the same ``out_dir``, a
folder all ranks share):

- ranks given a different attack, model, item structure, number of rows, first or
  last row, or chunk_size than rank 0 are refused (every rank raises the same ValueError) before any chunk is attacked;
- chunk ``k`` is read and attacked by rank ``k % world_size`` only;
- rank 0 alone writes ``manifest.json``: at the start (after refusing a
  different run, folding in what an interrupted run left, deleting stale
  temporaries) and at the end (merging every rank's chunks and checking every
  chunk's SHA-256); every rank raises the same error if any rank fails;
- rank ``r`` records each chunk it finishes in its own ``manifest.rank-<r>.json``,
  so no two processes ever write the same file. A killed run can be resumed
  with any number of processes, or in one: the next run folds the part files
  into ``manifest.json`` before sharding what is still missing, and removes them.

A single process writes ``manifest.json`` itself after every chunk. One run at
a time per ``out_dir``.
"""

from .chunks import FIELDS, load_generated
from .dataset import UAEDataset
from .files import DiskFullError, atomic_write, remove_stale_temporaries, sha256, tensor_digest
from .fingerprint import run_fingerprint
from .ledger import FORMAT, MANIFEST, part_name
from .run import generate_dataset

_sha256 = sha256  # the earlier private name, kept for scripts that used it

__all__ = [
    "DiskFullError",
    "FIELDS",
    "FORMAT",
    "MANIFEST",
    "UAEDataset",
    "atomic_write",
    "generate_dataset",
    "load_generated",
    "part_name",
    "remove_stale_temporaries",
    "run_fingerprint",
    "sha256",
    "tensor_digest",
]
