"""A captured notebook_definitions(...) call as the attributes of a NotebookProjectSettings defs.yaml
(project/settings_yaml.py), read back through the component's own schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nb_assets import FileDrop, Notifications, SmtpChannel, Source, WebhookChannel
from nb_assets.defs.component_schema import from_model
from nb_assets.defs.component_settings import NotebookProjectSettings
from nb_assets.errors import DeclarationError
from nb_assets.project.definitions_file import ProjectDeclarations
from nb_assets.project.settings_yaml import carried_settings, declared_settings, settings_yaml

NOTIFICATIONS = Notifications(
    email=SmtpChannel("smtp.example.com", 587, username_env="SMTP_USER", password_env="SMTP_PASSWORD",
                      sender="nb-assets@example.com"),
    webhooks={"data-eng": WebhookChannel(url_env="DATA_ENG_WEBHOOK_URL")},
    interval_s=10,
)


def _declared(root: Path, **given: object) -> ProjectDeclarations:
    """A definitions.py in root/etl/ (its base_dir), naming the warehouse and policy absolutely."""
    values: dict = dict(notebooks=[], policy=root / "policy.yaml", base_dir=root / "etl",
                        warehouse=str(root / "data" / "warehouse.duckdb"), sandbox="docker")
    values.update(given)
    return ProjectDeclarations(**values)


def test_paths_are_named_from_the_project_root_and_read_back_through_the_components_schema(tmp_path: Path) -> None:
    sources = [Source("regions", path="regions/", format="csv", zones=["public"]),
               Source("rates", url="https://example.com/rates?date=$ds", format="json", zones=["public"]),
               Source("outside", path=str(tmp_path.parent / "shared" / "x.parquet"))]
    drops = [FileDrop("raw.orders", folder="landing/orders", pattern="*.csv", mode="replace")]
    declared = _declared(tmp_path, notifications=NOTIFICATIONS, sources=sources, file_drops=drops)

    carried = carried_settings(declared, tmp_path, environ={})
    attributes = carried.attributes
    assert carried.notes == []
    named = (attributes["warehouse"], attributes["policy"], attributes["sandbox"])
    assert named == ("data/warehouse.duckdb", "policy.yaml", "docker")
    assert [s.get("path") or s.get("url") for s in attributes["sources"]] == [
        "etl/regions/", "https://example.com/rates?date=$ds", (tmp_path.parent / "shared" / "x.parquet").as_posix()]
    assert attributes["file_drops"] == [
        {"table": "raw.orders", "folder": "etl/landing/orders", "pattern": "*.csv", "mode": "replace"}]
    # Secrets stay named by variable; defaults are left out.
    assert attributes["notifications"] == {
        "email": {"host": "smtp.example.com", "username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD",
                  "sender": "nb-assets@example.com"},
        "webhooks": {"data-eng": {"url_env": "DATA_ENG_WEBHOOK_URL"}}, "interval_s": 10}

    text = settings_yaml(attributes, tmp_path / "etl" / "definitions.py")
    document = yaml.safe_load(text)
    assert document["type"] == "nb_assets.NotebookProjectSettings"
    model = NotebookProjectSettings.model().model_validate(document["attributes"])  # unknown keys would be refused
    assert from_model(Notifications, model.notifications) == NOTIFICATIONS  # type: ignore[attr-defined]
    dropped = FileDrop("raw.orders", "etl/landing/orders", "*.csv", "replace")
    assert from_model(FileDrop, model.file_drops[0]) == dropped  # type: ignore[attr-defined]
    assert from_model(Source, model.sources[1]) == sources[1]  # type: ignore[attr-defined]


def test_what_came_from_the_environment_or_holds_a_password_is_not_written(tmp_path: Path) -> None:
    declared = _declared(tmp_path)
    environ = {"NB_ASSETS_WAREHOUSE": declared.warehouse or "", "NB_ASSETS_POLICY": str(declared.policy),
               "NB_ASSETS_SANDBOX": "docker"}
    carried = carried_settings(declared, tmp_path, environ)
    assert carried.attributes == {}
    assert [n.split(",")[0] for n in carried.notes] == [
        "the warehouse came from NB_ASSETS_WAREHOUSE", "the policy came from NB_ASSETS_POLICY",
        "the sandbox came from NB_ASSETS_SANDBOX"]

    secret = carried_settings(_declared(tmp_path, warehouse="postgresql://etl:hunter2@db.example.com/wh"), tmp_path, {})
    assert "warehouse" not in secret.attributes and "hunter2" not in repr(secret)
    assert "holds a password" in secret.notes[0]
    plain = carried_settings(_declared(tmp_path, warehouse="postgresql://db.example.com/wh"), tmp_path, {})
    assert plain.attributes["warehouse"] == "postgresql://db.example.com/wh"


def test_a_value_with_no_yaml_form_is_refused(tmp_path: Path) -> None:
    hook = WebhookChannel(url_env="HOOK")
    object.__setattr__(hook, "timeout_s", lambda: 1)  # what a settings field cannot hold
    with pytest.raises(DeclarationError, match="has no YAML form a settings component reads"):
        carried_settings(_declared(tmp_path, notifications=Notifications(webhooks={"a": hook})), tmp_path, {})


def test_the_settings_a_project_declares_already_are_found(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "defs.yaml").write_text("type: nb_assets.NotebookComponent\nattributes: {path: x.ipynb}\n---\n"
                                              "type: nb_assets.NotebookProjectSettings\nattributes: {sandbox: local}\n")
    assert declared_settings(tmp_path) == [(tmp_path / "a" / "defs.yaml", {"sandbox": "local"})]
    assert declared_settings(tmp_path / "missing") == []


def test_a_secret_definitions_py_read_from_the_environment_is_never_written(tmp_path: Path) -> None:
    """`WebhookChannel(url=os.environ["HOOK_URL"])` or a token in a header would land in the YAML as its
    value: refused, naming where and which variable; a URL with a password too. Named by variable, it carries."""
    hook = "https://hooks.example.invalid/services/T000/B000/abcdefgh"
    literal = _declared(tmp_path, notifications=Notifications(webhooks={"ops": WebhookChannel(url=hook)}))
    with pytest.raises(DeclarationError, match=r"notifications\.webhooks\.ops\.url: the value of \$OPS_HOOK_URL"):
        carried_settings(literal, tmp_path, {"OPS_HOOK_URL": hook})
    token = _declared(tmp_path, sources=[Source("rates", url="https://api.example.invalid/rates", format="json",
                                                headers={"Authorization": "Bearer s3cr3t-t0ken"})])
    with pytest.raises(DeclarationError, match=r"sources\[0\]\.headers\.Authorization: the value of \$RATES_TOKEN"):
        carried_settings(token, tmp_path, {"RATES_TOKEN": "Bearer s3cr3t-t0ken"})
    with_password = _declared(tmp_path, sources=[Source("dump", url="https://etl:hunter2@files.example.invalid/d.csv",
                                                        format="csv")])
    with pytest.raises(DeclarationError, match=r"sources\[0\]\.url: a URL with a password"):
        carried_settings(with_password, tmp_path, {})
    named = _declared(tmp_path, notifications=Notifications(webhooks={"ops": WebhookChannel(url_env="OPS_HOOK_URL")}))
    carried = carried_settings(named, tmp_path, {"OPS_HOOK_URL": hook})
    assert carried.attributes["notifications"] == {"webhooks": {"ops": {"url_env": "OPS_HOOK_URL"}}}
