"""The public surface is curated: sorted `__all__`, everything importable and documented."""

from __future__ import annotations

import openmeter_billing
import openmeter_billing.types


def test_all_is_sorted_and_complete() -> None:
    names = openmeter_billing.__all__

    # isort style: CONSTANTS, then Classes, then functions and dunders, each alphabetical
    def kind(name: str) -> tuple[int, str]:
        rank = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return rank, name

    assert names == sorted(names, key=kind)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(openmeter_billing, name), name


def test_exported_classes_claim_the_public_module() -> None:
    assert openmeter_billing.NotFoundError.__module__ == "openmeter_billing"
    assert openmeter_billing.OpenMeterBilling.__module__ == "openmeter_billing"


def test_every_public_name_has_a_docstring() -> None:
    for module in (openmeter_billing, openmeter_billing.types):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type):
                assert obj.__doc__ and obj.__doc__.strip(), f"{module.__name__}.{name}"


def test_py_typed_ships() -> None:
    from importlib.resources import files

    assert files("openmeter_billing").joinpath("py.typed").is_file()
