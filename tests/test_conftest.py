"""The end-of-run summary names the missing oracle libraries and how to install them."""

import pathlib

pytest_plugins = ["pytester"]

CONFTEST = pathlib.Path(__file__).with_name("conftest.py")


def test_summary_says_torch_tests_skipped_and_how_to_enable(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        test_oracles="""
        import sys
        import pytest

        sys.modules["torch"] = None  # as if torch were not installed

        def test_torch_a():
            pytest.importorskip("torch")

        def test_torch_b():
            pytest.importorskip("torch")

        def test_other_peer():
            pytest.importorskip("no_such_peer_module")

        def test_plain_skip():
            pytest.skip("unrelated reason")

        def test_runs():
            assert True
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4)
    out = result.stdout.str()
    assert "optional oracles not installed" in out
    assert "2 test(s) skipped because torch is not importable" in out
    assert "pip install torch==2.13.0" in out
    assert "1 test(s) skipped because no_such_peer_module is not importable" in out


def test_no_summary_when_nothing_is_missing(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        test_plain="""
        import pytest

        def test_skip():
            pytest.skip("unrelated reason")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert "optional oracles not installed" not in result.stdout.str()
