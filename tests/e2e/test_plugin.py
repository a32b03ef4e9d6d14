"""The pytest plugin, as a team uses it: its fixtures in a test session of their own."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.mark.slow
def test_a_team_fails_over_with_the_plugin_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_team='''
        import pytest

        @pytest.mark.failover_world(storage="local")
        def test_standard_playbook(failover_world, failover_cli):
            assert failover_cli("inventory").code == 0
            ran = failover_cli("run", "standard", "--target", failover_world.target, "--yes", "--json",
                               *failover_world.run_vars)
            assert ran.code == 0, ran.stderr
            assert ran.json()["status"] == "succeeded"
            assert "social-app-web-1" in failover_world.target_nodes()
            assert failover_world.dns("social.example.", "A") == [failover_world.target_nodes()["social-app-web-1"].public_ip]

        def test_an_account(moto_account):
            import boto3
            boto3.client("s3").create_bucket(Bucket="left-over")  # AWS_ENDPOINT_URL names the account
            assert [b["Name"] for b in moto_account.client("s3").list_buckets()["Buckets"]] == ["left-over"]

        def test_a_fresh_account_for_each_test(moto_account):
            assert moto_account.client("s3").list_buckets()["Buckets"] == []
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


@pytest.mark.slow
def test_a_team_checks_readiness_and_drills_in_ci_with_the_plugin(pytester: pytest.Pytester) -> None:
    """The README's readiness example, as a team's test session runs it."""
    pytester.makepyfile(test_ready='''
        import pytest

        @pytest.mark.failover_world(postgres=True)
        def test_ready_and_drilled(failover_world, failover_cli):
            target = failover_world.target
            assert failover_cli("inventory").code == 0
            assert failover_cli("replicate", "--target", target).code == 0
            failover_world.source.stop()  # the account is gone from here on
            drill = failover_cli("drill", "standard", "--target", target, "--json", *failover_world.run_vars)
            assert drill.code == 0, drill.stderr
            assert drill.json()["clean"] is True
            check = failover_cli("check", "standard", "--target", target, "--json")
            assert check.code == 0, check.stderr
            assert {c["name"]: c["status"] for c in check.json()["checks"]}["last-drill"] == "pass"
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_missing_emulator_fails_the_test_naming_the_install_script(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(pytester.path / "no-cache"))  # where Azurite is not
    pytester.makepyfile(test_team="def test_needs_azurite(failover_world):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*azurite-blob is not installed*scripts/install-test-deps*"])
