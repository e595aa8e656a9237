import pytest

from shiptoolkit.errors import ConfigError, DuplicateComponentError, UnknownComponentError
from shiptoolkit.plugins.docstrings import parse_args_section
from shiptoolkit.plugins.registry import Registry


def make_registry():
    reg = Registry("loss")

    @reg.register("soft_dice")
    def soft_dice(smooth: float = 1.0, squared: bool = False):
        """Soft dice loss.

        Args:
            smooth: added to numerator and denominator so empty masks give no NaN.
            squared: square the
                denominator terms.
        """
        return (smooth, squared)

    reg.register("focal", lambda gamma=2.0: gamma)
    return reg


def test_register_get_create_and_list():
    reg = make_registry()
    assert reg.names() == ["focal", "soft_dice"]
    assert reg.create("soft_dice", smooth=2.0) == (2.0, False)
    assert [c.name for c in reg.list("soft*")] == ["soft_dice"]
    assert reg.get("soft_dice").summary == "Soft dice loss."
    assert "focal" in reg and len(reg) == 2


def test_params_are_introspected_with_docs():
    params = {p.name: p for p in make_registry().get("soft_dice").params}
    assert params["smooth"].default == 1.0 and params["smooth"].type == "float"
    assert "empty masks" in params["smooth"].doc
    assert params["squared"].doc == "square the denominator terms."


def test_unknown_name_lists_known_and_suggests():
    with pytest.raises(UnknownComponentError) as err:
        make_registry().get("soft_dise")
    message = str(err.value)
    assert "'soft_dice'" in message and "focal" in message and "Did you mean" in message


def test_unknown_param_is_a_config_error_with_suggestion():
    with pytest.raises(ConfigError, match="no parameter 'smoth'.*Did you mean 'smooth'"):
        make_registry().create("soft_dice", smoth=1)


def test_duplicate_requires_override():
    reg = make_registry()
    with pytest.raises(DuplicateComponentError, match="override=True"):
        reg.register("focal", lambda: 0)
    reg.register("focal", lambda: 1, override=True)
    assert reg.create("focal") == 1


@pytest.mark.parametrize("bad", ["Focal", "has space", "", "1abc"])
def test_bad_names_rejected(bad):
    with pytest.raises(ValueError, match="snake_case"):
        Registry("loss").register(bad, lambda: 0)


def test_parse_args_section_stops_at_next_section():
    doc = "Title.\n\nArgs:\n    a (int): first.\n    b: second\n        continued.\n\nReturns:\n    x: no."
    assert parse_args_section(doc) == {"a": "first.", "b": "second continued."}
