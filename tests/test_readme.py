"""Every Python block of the README runs as written, in order, in one namespace (as a reader would paste them)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_blocks_run_as_written(one_thread):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 4  # the API example and one per adapter
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["res"].adv.shape == namespace["x"].shape
    assert namespace["views_adv"].shape == namespace["views"].shape
