"""Dead letters against ``settings.max_dead_letter_share``: which count, how reasons group, what verify says."""

from __future__ import annotations

from importlib.resources import files

import pytest
import yaml

from crm_migration.engine.verify import dead_letter_verdict, reason_group, source_gap
from crm_migration.mapping.spec import SpecError, parse_pair

SCOPES = {"Opportunity": "Opportunity", "stage": "stage", "OpportunityHistory": "OpportunityHistory"}
DEAD = {
    # Odoo refused the stage: a mapping failure
    ("stage", "p1/Won"): ("crm.stage", "team_id", "ValueError: Invalid field 'team_id' in 'crm.stage'"),
    # a deal whose stage Odoo refused: counts, as its stage does
    ("Opportunity", "006A00000000001AAA"): ("crm.lead", "stage_id", "stage p1/Won not migrated (yet)"),
    # history of a deal the source deleted (not staged, no dead letter): a gap in the source
    ("OpportunityHistory", "008A00000000001AAA"): ("mail.message", "res_id",
                                                   "Opportunity 006A00000000009AAA not migrated (yet)"),
    # history of a deal the source has but that did not land (object not loaded): counts
    ("OpportunityHistory", "008A00000000002AAA"): ("mail.message", "res_id",
                                                   "Opportunity 006A00000000008AAA not migrated (yet)"),
    # history of the refused deal: counts (the cascade of a mapping failure)
    ("OpportunityHistory", "008A00000000003AAA"): ("mail.message", "res_id",
                                                   "Opportunity 006A00000000001AAA not migrated (yet)"),
    ("Attachment", "00PA00000000001AAA"): ("ir.attachment", "datas", "file missing in the source (HTTP 404): 'a.pdf'"),
    ("Task", "00TA00000000001AAA"): ("mail.message", "res_id", "no parent record among ['Opportunity'] in {}"),
    # a cycle of references counts
    ("Opportunity", "006A0000000000CAAA"): ("crm.lead", "x", "Opportunity 006A0000000000DAAA not migrated (yet)"),
    ("Opportunity", "006A0000000000DAAA"): ("crm.lead", "x", "Opportunity 006A0000000000CAAA not migrated (yet)"),
}
STAGED = {("Opportunity", "006A00000000008AAA")}


@pytest.mark.parametrize(("key", "gap"), [
    (("stage", "p1/Won"), False),
    (("Opportunity", "006A00000000001AAA"), False),
    (("OpportunityHistory", "008A00000000001AAA"), True),
    (("OpportunityHistory", "008A00000000002AAA"), False),
    (("OpportunityHistory", "008A00000000003AAA"), False),
    (("Attachment", "00PA00000000001AAA"), True),
    (("Task", "00TA00000000001AAA"), True),
    (("Opportunity", "006A0000000000CAAA"), False),
])
def test_what_counts_against_the_limit(key, gap):
    assert source_gap(key, DEAD, SCOPES, STAGED) is gap


@pytest.mark.parametrize(("field", "reason", "group"), [
    ("res_id", "Opportunity 006A00000000009AAA not migrated (yet)", "res_id: Opportunity <id> not migrated (yet)"),
    ("datas", "file missing in the source (HTTP 404): 'LOI.pdf'", "datas: file missing in the source (HTTP 404): '…'"),
    ("priority", "ValueError: Wrong value for crm.lead.priority: '9'",
     "priority: ValueError: Wrong value for crm.lead.priority: '…'"),
    (None, "deals 981 not migrated (yet)", "deals <id> not migrated (yet)"),
    ("name", "The operation cannot be completed:\n  Contacts require a name", "name: The operation cannot be "
                                                                              "completed: Contacts require a name"),
])
def test_reasons_group_without_their_ids(field, reason, group):
    assert reason_group(field, reason) == group


def _row(name, *, crosswalk, dead, counted, reasons, limit=0.01):
    share = round(counted / (crosswalk + dead), 6) if counted else 0.0
    return {"object": name, "crosswalk": crosswalk, "dead_letters": dead, "dead_letters_counted": counted,
            "dead_letter_share": share, "dead_letter_limit": limit, "dead_letter_reasons": reasons}


def test_the_verdict_names_object_count_share_and_top_reasons():
    rows = [
        _row("Contact", crosswalk=0, dead=146, counted=146,
             reasons=[["mobile: ValueError: Invalid field 'mobile' in 'res.partner'", 140, True],
                      ["email: ValueError: …", 6, True]]),
        _row("OpportunityHistory", crosswalk=284, dead=11, counted=0,
             reasons=[["res_id: Opportunity <id> not migrated (yet)", 11, False]]),
        _row("Account", crosswalk=50, dead=0, counted=0, reasons=[]),
        _row("Task", crosswalk=999, dead=1, counted=1, reasons=[["x: y", 1, True]]),   # 0.1 %: under 1 %
    ]
    over, action = dead_letter_verdict(rows)
    assert over == ["Contact: 146 of 146 records are dead letters (100.0%, limit 1.0% settings.max_dead_letter_share)"
                    ": 140 × mobile: ValueError: Invalid field 'mobile' in 'res.partner'; 6 × email: ValueError: …"]
    assert action == [
        "OpportunityHistory: 11 dead letters need action (0 counted, 0.0% of 295 records, limit 1.0%; 11 a gap in "
        "the source): 11 × res_id: Opportunity <id> not migrated (yet) (a gap in the source)",
        "Task: 1 dead letter needs action (1 counted, 0.1% of 1,000 records, limit 1.0%; 0 a gap in the source): "
        "1 × x: y"]


def test_top_reasons_are_cut_at_five():
    reasons = [[f"f{i}: reason {i}", 10 - i, True] for i in range(7)]
    [line] = dead_letter_verdict([_row("Contact", crosswalk=0, dead=49, counted=49, reasons=reasons)])[0]
    assert "6 × f4: reason 4; and 2 other reasons" in line and "f5" not in line


def _pair(**settings):
    raw = yaml.safe_load((files("crm_migration") / "pairs" / "apto_to_odoo.yaml").read_text(encoding="utf-8"))
    raw.setdefault("settings", {}).update(settings)
    return parse_pair(raw, origin="test")


def test_the_setting_defaults_to_one_percent_and_is_checked():
    assert _pair().settings.max_dead_letter_share == 0.01
    assert _pair(max_dead_letter_share=0).settings.max_dead_letter_share == 0
    assert _pair(max_dead_letter_share=0.2).settings.max_dead_letter_share == 0.2
    for bad in (1.5, -0.1, "1%", True):
        with pytest.raises(SpecError, match="max_dead_letter_share must be a share"):
            _pair(max_dead_letter_share=bad)
