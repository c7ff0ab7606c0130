#!/usr/bin/env python3
"""Creates (or rotates) the SES SMTP credentials of the ims-<env>-ses-smtp IAM user and stores
them in the ims/<env>/smtp secret. Run by an operator with IAM and Secrets Manager rights:

    python3 deploy/tools/ses_smtp_credentials.py --env prod --region eu-west-1 [--delete-old]

The secret access key never leaves this process: it is turned into the SES SMTP password
(AWS's documented derivation, version 4) and written only to Secrets Manager, merged into the
secret's JSON (username, password; host, port and sender are kept). Nothing secret is printed.
With --delete-old, the user's previous access key is deleted after the secret is updated.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys


def smtp_password(secret_access_key: str, region: str) -> str:
    def sign(key, msg):
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    signature = sign(("AWS4" + secret_access_key).encode("utf-8"), "11111111")
    for part in (region, "ses", "aws4_request", "SendRawEmail"):
        signature = sign(signature, part)
    return base64.b64encode(bytes([0x04]) + signature).decode("ascii")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--delete-old", action="store_true")
    args = ap.parse_args()

    import boto3  # the operator's AWS credentials, from the usual chain

    user = f"ims-{args.env}-ses-smtp"
    secret_id = f"ims/{args.env}/smtp"
    iam = boto3.client("iam")
    sm = boto3.client("secretsmanager", region_name=args.region)

    old = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]
    if len(old) >= 2:
        sys.exit(f"{user} already has two access keys; delete the unused one first")
    key = iam.create_access_key(UserName=user)["AccessKey"]
    current = json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    current.update({"username": key["AccessKeyId"],
                    "password": smtp_password(key["SecretAccessKey"], args.region)})
    sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(current))
    print(f"{secret_id}: new SMTP credentials stored (access key {key['AccessKeyId']})")
    if args.delete_old:
        for key_id in old:
            iam.delete_access_key(UserName=user, AccessKeyId=key_id)
            print(f"deleted the previous access key {key_id}")


if __name__ == "__main__":
    main()
