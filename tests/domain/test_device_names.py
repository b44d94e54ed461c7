"""Device name templates (muster.domain.device_names)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from muster.domain.device_names import MAX_DEVICE_NAME_LENGTH, render_device_name, template_problems


def test_template_substitutes_device_type_and_serial() -> None:
    """ADEP-10: `{{DEVICETYPE}}-{{SERIAL}}` on iPad ABC123 gives iPad-ABC123 (003_729e51c15a5a5608.txt:966)."""
    assert render_device_name("{{DEVICETYPE}}-{{SERIAL}}", serial="ABC123", device_type="iPad") == "iPad-ABC123"


def test_literal_text_and_repeated_variables_are_kept() -> None:
    """ADEP-10: the template is literal text around the variables (003_729e51c15a5a5608.txt:966, :4975)."""
    name = render_device_name("Contoso {{SERIAL}} ({{SERIAL}})", serial="F7TLWCLBX196", device_type="iPhone")
    assert name == "Contoso F7TLWCLBX196 (F7TLWCLBX196)"


def test_template_of_63_characters_is_valid_and_64_is_not() -> None:
    """R-072: the template may not exceed 63 characters, variables included (003_729e51c15a5a5608.txt:4975)."""
    assert template_problems("{{SERIAL}}" + "x" * 53) == []
    problems = template_problems("{{SERIAL}}" + "x" * 54)
    assert len(problems) == 1
    assert "64 characters" in problems[0]
    assert "63" in problems[0]


def test_unknown_variable_is_reported() -> None:
    """ADEP-10: only {{SERIAL}} and {{DEVICETYPE}} exist (003_729e51c15a5a5608.txt:966)."""
    problems = template_problems("{{DEVICENAME}}-{{SERIAL}}-{{serial}}")
    assert problems == [
        "Unknown variable {{DEVICENAME}}, {{serial}} in the device name template; use {{SERIAL}} or {{DEVICETYPE}}."
    ]


def test_blank_template_is_reported() -> None:
    """003_729e51c15a5a5608.txt:4975: 'Apply device name template' = Yes needs a template to apply."""
    assert template_problems("   ") != []


def test_rendered_name_is_cut_to_63_characters() -> None:
    """R-072: names stay within 63 characters even when the serial is longer than its variable (003:4975)."""
    template = "x" * 52 + "{{SERIAL}}"  # 62 characters: a valid template
    assert template_problems(template) == []
    name = render_device_name(template, serial="ABCDEFGHIJKLMN", device_type="iPad")
    assert name == "x" * 52 + "ABCDEFGHIJK"
    assert len(name) == MAX_DEVICE_NAME_LENGTH


@given(
    template=st.lists(st.sampled_from(["a", " ", "-", "{{SERIAL}}", "{{DEVICETYPE}}", "{", "}"]), max_size=12).map(
        "".join
    ),
    serial=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=8, max_size=14),
    device_type=st.sampled_from(["iPad", "iPhone", "iPod touch"]),
)
def test_rendered_names_never_exceed_63_characters_nor_keep_known_variables(
    template: str, serial: str, device_type: str
) -> None:
    """R-072 (003_729e51c15a5a5608.txt:4975) over arbitrary templates."""
    name = render_device_name(template, serial=serial, device_type=device_type)
    assert len(name) <= MAX_DEVICE_NAME_LENGTH
    if len(template.replace("{{SERIAL}}", serial).replace("{{DEVICETYPE}}", device_type)) <= MAX_DEVICE_NAME_LENGTH:
        assert "{{SERIAL}}" not in name
        assert "{{DEVICETYPE}}" not in name
