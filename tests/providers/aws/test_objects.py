"""The S3 source's own signed GETs (``SignedGets``): the same signature as botocore's, accepted by
moto when it checks signatures."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from failover.testing.servers import MotoServer
from providers.aws.objects import S3Objects, signed_get
from providers.aws.session import AwsSession

WHEN = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(("endpoint", "host", "path", "query", "token"), [
    ("http://127.0.0.1:45011", "127.0.0.1:45011", "/media/logo.png", "", None),
    ("https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", "/media/f%C3%BCr%20dich/a%2Bb~c.txt", "",
     "tok+en/="),
    ("http://localhost:9000", "localhost:9000", "/media",
     "continuation-token=1%2Fab%3D%3D&encoding-type=url&list-type=2&max-keys=1000", None),
])
def test_the_signature_is_botocores(monkeypatch: pytest.MonkeyPatch, endpoint: str, host: str, path: str, query: str,
                                    token: str | None) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    request = AWSRequest(method="GET", url=f"{endpoint}{path}" + (f"?{query}" if query else ""))
    S3SigV4Auth(credentials.get_frozen_credentials(), "s3", "eu-west-1").add_auth(request)

    ours = signed_get(credentials.get_frozen_credentials(), "eu-west-1", host, path, query, now=WHEN)

    assert ours == dict(request.headers.items())


@pytest.fixture(scope="module")
def account(moto_server: MotoServer) -> Any:
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=moto_server.url, **keys)
    s3.create_bucket(Bucket="media")
    # Plain keys: moto's own signature check gets '+' and non-ASCII paths wrong (botocore's signature, refused
    # there too; the client then reads those), so it can only vouch for these.
    for index in range(3):
        s3.put_object(Bucket="media", Key=f"dir with space/obj {index}.bin", Body=b"x" * (index + 1) * 100,
                      ContentType="image/png", Metadata={"owner": "sre"})
    iam = boto3.client("iam", endpoint_url=moto_server.url, **keys)
    iam.create_user(UserName="copier")
    policy = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
    iam.put_user_policy(UserName="copier", PolicyName="read", PolicyDocument=policy)
    return moto_server, iam.create_access_key(UserName="copier")["AccessKey"]


def test_moto_checking_signatures_serves_the_signed_gets_and_the_client_is_never_asked(
    account: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, key = account
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    objects = S3Objects(AwsSession(endpoint_url=server.url), workers=2)
    objects.session.client("s3", "us-east-1")

    def no_client(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the boto3 client was asked: the signed GET was refused")

    server.enforce_auth(True)
    try:
        monkeypatch.setattr(objects.session, "call", no_client)
        monkeypatch.setattr(objects.session, "pages", no_client)
        listed = list(objects.iter_objects("media"))
        read = {}
        for item in listed:
            with objects.open("media", item.key) as opened:
                read[item.key] = (opened.info, b"".join(opened.chunks))
    finally:
        server.enforce_auth(False)

    assert [item.key for item in listed] == [f"dir with space/obj {index}.bin" for index in range(3)]
    for index, item in enumerate(listed):
        info, body = read[item.key]
        assert body == b"x" * (index + 1) * 100
        assert info.md5 == item.md5 == hashlib.md5(body).hexdigest()
        assert (info.size, info.content_type, info.meta) == (len(body), "image/png", {"owner": "sre"})


def test_a_wrong_secret_is_refused_and_the_client_says_so(account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server, key = account
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    objects = S3Objects(AwsSession(endpoint_url=server.url), workers=2)
    asked = []
    call = objects.session.call
    monkeypatch.setattr(objects.session, "call", lambda *args, **kwargs: asked.append(args) or call(*args, **kwargs))
    server.enforce_auth(True)
    try:
        with pytest.raises(Exception) as refused:
            objects.open("media", "dir with space/obj 0.bin")
    finally:
        server.enforce_auth(False)
    assert asked, "a refused signed GET is handed to the client"
    assert "not-the-secret" not in str(refused.value)
