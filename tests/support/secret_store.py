"""Secrets Manager and SES on a moto server, for the secret-store and SES tests.

Usage (the secret's JSON value is read from standard input where one is needed):

  python3 tests/support/secret_store.py ENDPOINT create NAME   customer-managed KMS key + secret
  python3 tests/support/secret_store.py ENDPOINT put NAME      a new version (a rotation)
  python3 tests/support/secret_store.py ENDPOINT verify EMAIL  an SES sending identity

Prints what it did as JSON.
"""

import json
import sys

import boto3

endpoint, command, arg = sys.argv[1:4]
kw = dict(endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")

if command == "create":
    kms = boto3.client("kms", **kw)
    key = kms.create_key(Description="IMS secrets", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    sm = boto3.client("secretsmanager", **kw)
    created = sm.create_secret(Name=arg, KmsKeyId=key["Arn"], SecretString=sys.stdin.read())
    described = sm.describe_secret(SecretId=arg)
    print(json.dumps({"arn": created["ARN"], "kms_key": key["Arn"], "described_kms_key": described.get("KmsKeyId")}))
elif command == "put":
    sm = boto3.client("secretsmanager", **kw)
    put = sm.put_secret_value(SecretId=arg, SecretString=sys.stdin.read())
    print(json.dumps({"version": put["VersionId"]}))
elif command == "verify":
    ses = boto3.client("sesv2", **kw)
    ses.create_email_identity(EmailIdentity=arg)
    print(json.dumps({"verified": arg}))
else:
    sys.exit(f"unknown command {command}")
