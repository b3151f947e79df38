"""The README says exactly what the code does: every Param of every DAG, every connection extra a hook reads, and an
install line that names the wheel the Makefile builds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")
HOOKS = ROOT / "plugins" / "crm_migration" / "hooks"


def _row(first_cell: str) -> list[str]:
    """The cells of the README table row whose first cell is ``first_cell``."""
    (line,) = [ln for ln in README.splitlines() if ln.startswith(f"| {first_cell} |")]
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _names(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", text))


@pytest.mark.parametrize("kind", ["plan", "migrate", "delta", "rollback"])
def test_the_dag_table_lists_every_param_of_each_dag(kind):
    from crm_migration.dag_factory import build_pair_dags

    params = _names(_row(f"`<pair>_{kind}`")[2])
    for pair in ("apto_to_odoo", "link_app_to_odoo"):
        dag = build_pair_dags(pair)[f"{pair}_{kind}"]
        assert params == set(dag.params.keys()), (pair, kind)


@pytest.mark.parametrize(("conn_id", "hook"), [("odoo_default", "odoo.py"), ("apto_default", "apto.py"),
                                                ("link_app_default", "link_app.py")])
def test_the_connection_table_lists_every_extra_its_hook_reads(conn_id, hook):
    fields = _row(f"`{conn_id}`")[2]
    listed = _names(fields.split("; extra ", 1)[1])
    source = (HOOKS / hook).read_text(encoding="utf-8")
    # ``extra__<type>__<name>``: the UI form's older spelling of the same extra
    read = {n for n in re.findall(r'extra(?:\.get\(|\[)"([a-z_]+)"', source) if not n.startswith("extra__")}
    assert read and listed == read, conn_id
    # and the connection form declares no extra the README leaves out
    from crm_migration.provider_info import get_provider_info

    (conn_type,) = [c for c in get_provider_info()["connection-types"]
                    if c["hook-class-name"].startswith(f"crm_migration.hooks.{hook[:-3]}.")]
    assert set(conn_type.get("conn-fields", {})) <= listed, conn_id


def test_the_install_line_names_the_wheel_make_wheel_builds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wheel = f"dist/{project['name'].replace('-', '_')}-"
    assert f"pip install {wheel}*.whl -c requirements.txt" in README
    assert f"{wheel}{project['version']}-py3-none-any.whl" in README
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^wheel:\n(\t.*\n)*\t\$\(BIN\)/pip wheel .*-w dist \.\n", makefile, re.M)
