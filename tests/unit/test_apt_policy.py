"""apt-cache policy output as bambu-edge reads it for the dashboard's update line."""

from bambu_edge.updates.apt_policy import parse_policy

UPGRADABLE = """\
bambu-edge:
  Installed: 0.1.0
  Candidate: 0.2.0-1
  Version table:
     0.2.0-1 500
        500 http://apt.example.org/bambu-edge bookworm/main arm64 Packages
 *** 0.1.0 100
        100 /var/lib/dpkg/status
"""


def test_a_newer_candidate_is_an_update() -> None:
    p = parse_policy(UPGRADABLE, "bambu-edge")
    assert (p.installed, p.candidate, p.update_available) == ("0.1.0", "0.2.0-1", True)


def test_the_installed_version_as_candidate_is_no_update() -> None:
    text = "bambu-edge:\n  Installed: 0.2.0-1\n  Candidate: 0.2.0-1\n  Version table:\n *** 0.2.0-1 500\n"
    p = parse_policy(text, "bambu-edge")
    assert (p.installed, p.update_available) == ("0.2.0-1", False)


def test_not_installed_from_a_package_is_no_update_even_with_a_candidate() -> None:
    p = parse_policy("bambu-edge:\n  Installed: (none)\n  Candidate: 0.2.0-1\n", "bambu-edge")
    assert (p.installed, p.candidate, p.update_available) == (None, "0.2.0-1", False)


def test_a_package_apt_does_not_know_gives_nothing() -> None:
    for text in ("", "N: Unable to locate package bambu-edge\n"):
        p = parse_policy(text, "bambu-edge")
        assert (p.installed, p.candidate, p.update_available) == (None, None, False)


def test_another_packages_block_is_not_read_and_an_arch_qualified_name_is() -> None:
    text = (
        "bambu-edge-extras:\n  Installed: 9.0\n  Candidate: 9.9\n"
        "bambu-edge:arm64:\n  Installed: 0.1.0\n  Candidate: 0.1.1\n"
    )
    p = parse_policy(text, "bambu-edge")
    assert (p.installed, p.candidate) == ("0.1.0", "0.1.1")
