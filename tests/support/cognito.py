"""Sets up Cognito user pools on a moto server and prints real tokens as JSON.

Usage: python3 tests/support/cognito.py http://127.0.0.1:PORT
       python3 tests/support/cognito.py http://127.0.0.1:PORT token CLIENT_ID USERNAME

Two pools; in the first, one app client IMS trusts and one it does not, three groups and one
user per case. Tokens come from initiate_auth (USER_PASSWORD_AUTH), as a web app would get them.
"""

import base64
import gzip
import json
import os
import sys
import time

import boto3
import moto
from joserfc import jwt
from joserfc.jwk import RSAKey

endpoint = sys.argv[1]
idp = boto3.client(
    "cognito-idp",
    endpoint_url=endpoint,
    region_name="eu-west-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
PASSWORD = "Correct-Horse-Battery-9!"


def pool(name):
    pool_id = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="web", ExplicitAuthFlows=["USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    return pool_id, client


def user(pool_id, username, groups):
    idp.admin_create_user(UserPoolId=pool_id, Username=username)
    idp.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True
    )
    for g in groups:
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=g)


def tokens(client, username):
    return idp.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]


if sys.argv[2:3] == ["token"]:
    # A fresh access token for an existing user: token CLIENT_ID USERNAME.
    print(json.dumps({"token": tokens(sys.argv[3], sys.argv[4])["AccessToken"]}))
    sys.exit(0)

pool_id, client = pool("ims")
other_client = idp.create_user_pool_client(
    UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=["USER_PASSWORD_AUTH"]
)["UserPoolClient"]["ClientId"]
for g in ["ims-admins", "ims-managers", "ims-line-leaders", "visitors"]:
    idp.create_group(UserPoolId=pool_id, GroupName=g)
user(pool_id, "mina-manager", ["ims-managers"])
user(pool_id, "lee-leader", ["ims-line-leaders"])
user(pool_id, "vic-visitor", ["visitors"])
user(pool_id, "nobody", [])

other_pool, other_pool_client = pool("elsewhere")
idp.create_group(UserPoolId=other_pool, GroupName="ims-managers")
user(other_pool, "mina-manager", ["ims-managers"])

manager = tokens(client, "mina-manager")


def expired(token):
    """The same access token, expired an hour ago, signed with the stand-in's own key."""
    body = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["iat"] = int(time.time()) - 7200
    claims["exp"] = int(time.time()) - 3600
    path = os.path.join(os.path.dirname(moto.__file__), "cognitoidp/resources/jwks-private.json.gz")
    key = RSAKey.import_key(json.loads(gzip.open(path).read()))
    return jwt.encode({"alg": "RS256", "kid": "dummy", "typ": "JWT"}, claims, key)


out = {
    "issuer": f"https://cognito-idp.eu-west-1.amazonaws.com/{pool_id}",
    "jwks_url": f"{endpoint}/{pool_id}/.well-known/jwks.json",
    "client_id": client,
    "manager": manager["AccessToken"],
    "manager_id_token": manager["IdToken"],
    "manager_expired": expired(manager["AccessToken"]),
    "leader": tokens(client, "lee-leader")["AccessToken"],
    "unmapped_group": tokens(client, "vic-visitor")["AccessToken"],
    "no_group": tokens(client, "nobody")["AccessToken"],
    "other_client": tokens(other_client, "mina-manager")["AccessToken"],
    "other_pool": tokens(other_pool_client, "mina-manager")["AccessToken"],
}
print(json.dumps(out))
