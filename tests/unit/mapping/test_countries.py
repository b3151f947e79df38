"""Countries written as free text resolve in any common form (Babel's names in every locale, ISO codes,
the mapping's few aliases); what does not resolve lands without a country and is flagged."""

from __future__ import annotations

import json

import pytest

from crm_migration.mapping import mapper
from crm_migration.mapping.mapper import (
    CountryIndex,
    StateIndex,
    StaticRefs,
    map_record,
    territory_index,
    territory_index_file,
)
from crm_migration.mapping.spec import load_pair

ACC = "0015g00000Acc01AAA"


@pytest.fixture(scope="module")
def odoo_records(shared_dir) -> dict:
    return json.loads((shared_dir / "odoo17" / "records.json").read_text())


@pytest.fixture(scope="module")
def pair():
    return load_pair("apto_to_odoo").with_namespace("McLabs2")


@pytest.fixture(scope="module")
def countries(odoo_records, pair) -> CountryIndex:
    """The index as a run builds it: Odoo's countries and the mapping file's aliases."""
    return CountryIndex(odoo_records["res.country"], dict(pair.lookups["country"].options["aliases"]))


@pytest.mark.parametrize(("spelling", "code"), [
    ("US", "US"), ("gb", "GB"), ("USA", "US"), ("U.S.A.", "US"), ("U.S.", "US"), ("usa ", "US"),  # codes
    ("DEU", "DE"), ("GBR", "GB"), ("che", "CH"), ("JPN", "JP"),                                     # alpha-3
    ("United States", "US"), ("United States of America", "US"), ("United Kingdom", "GB"),
    ("UK", "GB"), ("U.K.", "GB"), ("Great Britain", "GB"), ("England", "GB"), ("The Netherlands", "NL"),
    ("Holland", "NL"), ("Russia", "RU"), ("Czech Republic", "CZ"), ("Czechia", "CZ"), ("Ivory Coast", "CI"),
    ("Côte d'Ivoire", "CI"), ("Turkey", "TR"), ("Türkiye", "TR"), ("UAE", "AE"),
    ("Deutschland", "DE"), ("España", "ES"), ("Espana", "ES"), ("Österreich", "AT"), ("Osterreich", "AT"),
    ("Schweiz", "CH"), ("Suisse", "CH"), ("Svizzera", "CH"), ("Italia", "IT"), ("Brasil", "BR"),
    ("México", "MX"), ("Polska", "PL"), ("Sverige", "SE"), ("Allemagne", "DE"), ("Alemania", "DE"),
    ("日本", "JP"), ("Россия", "RU"), ("Ελλάδα", "GR"), ("ΕΛΛΆΔΑ", "GR"), ("  deutschland  ", "DE"),
])
def test_a_country_resolves_in_any_common_form(countries, odoo_records, spelling, code):
    ids = {c["code"]: c["id"] for c in odoo_records["res.country"]}
    assert countries.code_of(spelling) == code
    assert countries(spelling) == ids[code]


@pytest.mark.parametrize("spelling", ["Atlantis", "Narnia", "Kongo", "XX", "ZZZ", "-", "", None])
def test_what_no_language_calls_a_country_does_not_resolve(countries, spelling):
    # "Kongo" is two countries (CD and CG) in some languages: no guess
    assert countries.code_of(spelling) is None and countries(spelling) is None


def test_the_babel_index_is_built_once_per_process():
    first = territory_index()
    assert territory_index() is first
    assert first["deutschland"] == "DE" and first["deu"] == "DE" and first["日本"] == "JP"
    assert "kongo" not in first


def test_the_babel_index_is_kept_for_the_next_process(tmp_path, monkeypatch):
    """Each load task is a process: the index is built once per machine, then read back (a file left there is
    what the next process finds; an unreadable one is built again; an unwritable place only costs the build)."""
    real = {"deutschland": "DE", "日本": "JP", "deu": "DE"}        # what a build gives (the real one: above)
    builds: list[int] = []

    def build() -> dict[str, str]:
        builds.append(1)
        return dict(real)

    monkeypatch.setattr(mapper, "_build_territory_index", build)
    monkeypatch.setenv("CRM_MIGRATION_CACHE", str(tmp_path / "cache"))
    try:
        territory_index.cache_clear()
        assert territory_index() == real and builds == [1]
        path = territory_index_file()
        assert path.parent == tmp_path / "cache" and json.loads(path.read_text(encoding="utf-8")) == real
        path.write_text(json.dumps({**real, "atlantis": "DE"}), encoding="utf-8")
        territory_index.cache_clear()
        assert territory_index()["atlantis"] == "DE" and builds == [1]          # read, not built
        path.write_text('{"deutschland": "DE", ', encoding="utf-8")
        territory_index.cache_clear()
        assert territory_index() == real and builds == [1, 1]
        assert json.loads(path.read_text(encoding="utf-8")) == real
        (tmp_path / "a-file").write_text("", encoding="utf-8")
        monkeypatch.setenv("CRM_MIGRATION_CACHE", str(tmp_path / "a-file" / "cache"))
        territory_index.cache_clear()
        assert territory_index() == real and builds == [1, 1, 1]
    finally:
        territory_index.cache_clear()


def _apto_vocabulary():
    from crm_sandbox.apto.generator import CITIES

    return list({(state, country) for _city, state, _zip, country in CITIES})


def _link_app_vocabulary():
    from crm_sandbox.link_app.generator import PLACES

    return list({(state, spelling) for _city, state, _zip, iso, name in PLACES for spelling in (iso, name)})


def test_every_country_the_sandbox_orgs_write_resolves_and_so_do_their_states(countries, odoo_records):
    states = StateIndex(odoo_records["res.country.state (US, CA, DE)"], countries, {"DE": {"Bavaria": "Bayern"}})
    with_states = {"US", "CA", "DE"}                  # the states records.json holds
    vocabulary = _apto_vocabulary() + _link_app_vocabulary()
    unresolved = [country for _state, country in vocabulary if countries(country) is None]
    assert not unresolved
    assert {countries.code_of(c) for _s, c in vocabulary} == {"US", "CA", "DE", "GB", "JP", "FR", "ES"}
    missing = [(s, c) for s, c in vocabulary if s and countries.code_of(c) in with_states and states((s, c)) is None]
    assert not missing


def test_an_unknown_country_lands_without_one_and_is_flagged(pair, countries, odoo_records):
    states = StateIndex(odoo_records["res.country.state (US, CA, DE)"], countries)
    refs = StaticRefs(lookups={"country": countries, "state": states, "owner": {}})
    spec = pair.objects["Account"]
    good = map_record(spec, {"Id": ACC, "Name": "Hafen GmbH", "BillingCity": "Hamburg",
                             "BillingCountry": "Deutschland"}, refs)
    assert "error" not in good and good["values"]["country_id"] == countries("DE")
    assert not [w for w in good.get("warnings", []) if w[0] == "country_id"]
    bad = map_record(spec, {"Id": ACC, "Name": "Poseidon Realty", "BillingCity": "Poseidonia",
                            "BillingCountry": "Atlantis"}, refs)
    assert "error" not in bad                                  # the company lands ...
    assert bad["values"]["country_id"] is None and bad["values"]["city"] == "Poseidonia"   # ... without a country
    assert ("country_id", "country 'Atlantis' not found in Odoo") in bad["warnings"]
