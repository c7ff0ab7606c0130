"""Security assertions over the IMS CloudFormation templates.

Each check takes the loaded templates (tools/cfn.py) and returns a list of problems (strings);
an empty list means the property holds. deploy/tests runs them on the real templates and on
deliberately broken copies, to show that each check can fail.
"""

import os
import re
from urllib.parse import parse_qs, urlsplit

import cfn

REPO = os.path.normpath(os.path.join(cfn.HERE, "..", ".."))
# Where deploy/Dockerfile puts the Amazon RDS CA bundle; IMS_DATABASE_URL's sslrootcert.
RDS_CA_BUNDLE = "/app/certs/rds-global-bundle.pem"
# Secrets IMS re-reads from IMS_SECRETS_ID while running: set in the environment they would win
# over the store silently (no error), and a rotation would never reach the app.
ROTATED_IN_STORE = ("IMS_DATABASE_PASSWORD", "IMS_JWT_SIGNING_KEYS")
ANYWHERE = {"0.0.0.0/0", "::/0"}

# The only places an Allow statement may use "Resource": "*": (stack, logical id, Sid) -> the
# exact actions allowed there. Each is commented in its template with the reason.
STAR_RESOURCE_ALLOWED = {
    ("security", "TaskExecutionRolePolicy", "EcrLogin"): {"ecr:GetAuthorizationToken"},
    ("pipeline", "BuildRole", "EcrLogin"): {"ecr:GetAuthorizationToken"},
    ("pipeline", "PipelineRole", "DescribeTaskDefinitions"): {"ecs:DescribeTaskDefinition"},
}


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _resources(tpl, *types):
    for logical, res in (tpl.get("Resources") or {}).items():
        if not types or res.get("Type") in types:
            yield logical, res


def _statements(document):
    return cfn.as_list(document.get("Statement"))


# ------------------------------------------------------------------ security groups
def security_group_rules(templates, resolver):
    """All ingress rules: (group id, protocol, from, to, source kind, source, condition)."""
    rules = []
    for stack, tpl in templates.items():
        for logical, res in _resources(tpl, "AWS::EC2::SecurityGroup"):
            gid = resolver.sg_id(stack, logical)
            for rule in (res.get("Properties") or {}).get("SecurityGroupIngress") or []:
                rules.append(_rule(resolver, stack, gid, rule, res.get("Condition")))
        for logical, res in _resources(tpl, "AWS::EC2::SecurityGroupIngress"):
            props = res["Properties"]
            gid = resolver.resolve(stack, props.get("GroupId"))
            rules.append(_rule(resolver, stack, gid, props, res.get("Condition")))
    return rules


def _rule(resolver, stack, gid, rule, condition):
    r = {k: resolver.resolve(stack, v) if k != "CidrIp" or not isinstance(v, dict) else v
         for k, v in rule.items()}
    if "CidrIp" in r:
        src = ("cidr", r["CidrIp"] if not isinstance(r["CidrIp"], dict) else "Ref:" + r["CidrIp"].get("Ref", "?"))
    elif "CidrIpv6" in r:
        src = ("cidr", r["CidrIpv6"])
    elif "SourceSecurityGroupId" in r:
        src = ("sg", r["SourceSecurityGroupId"])
    elif "SourcePrefixListId" in r:
        src = ("prefix-list", r["SourcePrefixListId"])
    else:
        src = ("unknown", repr(rule))
    return (gid, str(r.get("IpProtocol")), str(r.get("FromPort")), str(r.get("ToPort")), src[0], src[1], condition)


def expected_ingress(resolver):
    sg = cfn.Resolver.sg_id
    alb, tasks, db, rot = (sg("security", n) for n in
                           ("AlbSecurityGroup", "TaskSecurityGroup", "DatabaseSecurityGroup", "RotationSecurityGroup"))
    port = resolver.parameter("security", "AppPort")
    rules = set()
    for p in ("80", "443"):
        for cidr in ANYWHERE:
            rules.add((alb, "tcp", p, p, "cidr", cidr, None))
    rules.add((tasks, "tcp", port, port, "sg", alb, None))
    rules.add((db, "tcp", "5432", "5432", "sg", tasks, None))
    rules.add((db, "tcp", "5432", "5432", "sg", rot, None))
    rules.add((db, "tcp", "5432", "5432", "cidr", "Ref:AdminCidr", "HasAdminCidr"))
    return rules


def check_security_group_graph(templates):
    problems = []
    resolver = cfn.Resolver(templates)
    found = security_group_rules(templates, resolver)
    expected = expected_ingress(resolver)
    for rule in found:
        if rule not in expected:
            problems.append(f"unexpected ingress rule {rule}")
    for rule in expected:
        if rule not in found:
            problems.append(f"missing ingress rule {rule}")
    if len(found) != len(set(found)):
        problems.append("duplicate ingress rules")
    groups = {(s, l) for s, t in templates.items() for l, _ in _resources(t, "AWS::EC2::SecurityGroup")}
    expected_groups = {("security", n) for n in
                       ("AlbSecurityGroup", "TaskSecurityGroup", "DatabaseSecurityGroup", "RotationSecurityGroup")}
    if groups != expected_groups:
        problems.append(f"security groups are {sorted(groups)}, expected {sorted(expected_groups)}")
    # The optional admin rule exists only when AdminCidr is given, and it is empty by default.
    sec = templates["security"]
    if sec["Parameters"]["AdminCidr"].get("Default") != "":
        problems.append("AdminCidr must default to empty")
    if resolver.condition("security", "HasAdminCidr"):
        problems.append("HasAdminCidr must be false with the default parameters")
    # No egress to anywhere on all ports/protocols.
    for stack, tpl in templates.items():
        for logical, res in _resources(tpl, "AWS::EC2::SecurityGroup"):
            for rule in (res.get("Properties") or {}).get("SecurityGroupEgress") or []:
                if str(rule.get("IpProtocol")) == "-1" and (rule.get("CidrIp") in ANYWHERE or rule.get("CidrIpv6") in ANYWHERE):
                    problems.append(f"{stack}.{logical}: egress to anywhere on every port")
        for logical, res in _resources(tpl, "AWS::EC2::SecurityGroupEgress"):
            p = res["Properties"]
            if str(p.get("IpProtocol")) == "-1" and (p.get("CidrIp") in ANYWHERE or p.get("CidrIpv6") in ANYWHERE):
                problems.append(f"{stack}.{logical}: egress to anywhere on every port")
    # Who sits in which group, in which subnets.
    app = templates["app"]["Resources"]
    imp = lambda name: {"Fn::ImportValue": {"Fn::Sub": f"ims-${{EnvironmentName}}-{name}"}}
    if app["LoadBalancer"]["Properties"]["SecurityGroups"] != [imp("AlbSecurityGroupId")]:
        problems.append("the ALB must be in the ALB security group only")
    if app["LoadBalancer"]["Properties"]["Subnets"] != {"Fn::Split": [",", imp("PublicSubnetIds")]}:
        problems.append("the ALB must be in the public subnets")
    net = app["Service"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    if net.get("SecurityGroups") != [imp("TaskSecurityGroupId")]:
        problems.append("the ECS service must be in the tasks security group only")
    if net.get("Subnets") != {"Fn::Split": [",", imp("PrivateSubnetIds")]}:
        problems.append("the ECS tasks must be in the private subnets")
    if net.get("AssignPublicIp") != "DISABLED":
        problems.append("the ECS tasks must not get public IPs")
    data = templates["data"]["Resources"]
    if data["Database"]["Properties"].get("VPCSecurityGroups") != [imp("DatabaseSecurityGroupId")]:
        problems.append("RDS must be in the database security group only")
    if data["DatabaseSubnetGroup"]["Properties"]["SubnetIds"] != {"Fn::Split": [",", imp("PrivateSubnetIds")]}:
        problems.append("RDS must be in the private subnets")
    hosted = data["DatabaseSecretRotation"]["Properties"]["HostedRotationLambda"]
    if hosted.get("VpcSecurityGroupIds") != imp("RotationSecurityGroupId"):
        problems.append("the rotation Lambda must be in the rotation security group")
    # Public subnets: nothing but the ALB and the NAT gateways.
    public = {"PublicSubnet1", "PublicSubnet2"}
    for logical, res in _resources(templates["network"]):
        refs = _refs(res.get("Properties"))
        if refs & public and res["Type"] not in (
                "AWS::EC2::NatGateway", "AWS::EC2::SubnetRouteTableAssociation"):
            problems.append(f"network.{logical} ({res['Type']}) uses a public subnet")
    return problems


def _refs(node):
    out = set()
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            out.add(node["Ref"])
        for v in node.values():
            out |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= _refs(v)
    return out


def check_listeners(templates):
    problems = []
    app = templates["app"]["Resources"]
    for logical, res in _resources(templates["app"], "AWS::ElasticLoadBalancingV2::Listener"):
        p = res["Properties"]
        if p["Port"] == 80:
            actions = p["DefaultActions"]
            if len(actions) != 1 or actions[0]["Type"] != "redirect" or \
                    actions[0]["RedirectConfig"].get("Protocol") != "HTTPS" or \
                    str(actions[0]["RedirectConfig"].get("Port")) != "443":
                problems.append(f"app.{logical}: port 80 must only redirect to HTTPS 443")
        elif p["Port"] == 443:
            if p.get("Protocol") != "HTTPS" or not str(p.get("SslPolicy", "")).startswith("ELBSecurityPolicy-TLS13-1-2"):
                problems.append(f"app.{logical}: port 443 must be HTTPS with a TLS 1.2+ policy")
        else:
            problems.append(f"app.{logical}: unexpected listener port {p['Port']}")
    for logical, res in _resources(templates["app"], "AWS::ElasticLoadBalancingV2::ListenerRule"):
        if res["Properties"]["ListenerArn"] != {"Ref": "HttpsListener"}:
            problems.append(f"app.{logical}: rules may only be on the HTTPS listener")
    if app["LoadBalancer"]["Properties"].get("Scheme") != "internet-facing":
        problems.append("the ALB must be internet-facing")
    return problems


# ------------------------------------------------------------------ IAM
def check_no_wildcards(templates):
    """No "*" in any allowed action; no "*" resource except the allow-listed, commented places
    (and key policies, where "*" means the key itself); no NotAction/NotResource in Allow."""
    problems = []
    resolver = cfn.Resolver(templates)
    seen_allowed = set()
    for stack, logical, kind, label, document in cfn.policy_documents(templates):
        is_key_policy = templates[stack]["Resources"][logical]["Type"] == "AWS::KMS::Key"
        for st in _statements(document):
            sid = st.get("Sid", "?")
            where = f"{stack}.{label}/{sid}"
            actions = [resolver.resolve(stack, a) for a in cfn.as_list(st.get("Action"))]
            if st.get("Effect") == "Allow":
                if "NotAction" in st or "NotResource" in st or "NotPrincipal" in st:
                    problems.append(f"{where}: NotAction/NotResource/NotPrincipal in an Allow statement")
                for a in actions:
                    if "*" in a:
                        problems.append(f"{where}: wildcard action {a}")
                if kind == "trust":
                    continue
                resources = cfn.as_list(resolver.resolve(stack, st.get("Resource")))
                for r in resources:
                    if r == "*":
                        if is_key_policy:
                            continue
                        key = (stack, logical, sid)
                        if key not in STAR_RESOURCE_ALLOWED:
                            problems.append(f"{where}: Resource * is not allow-listed")
                        elif set(actions) != STAR_RESOURCE_ALLOWED[key]:
                            problems.append(f"{where}: Resource * with actions {actions}")
                        else:
                            seen_allowed.add(key)
                            if not _commented(stack, sid):
                                problems.append(f"{where}: Resource * without a comment giving the reason")
                    elif isinstance(r, str) and r.startswith("arn:"):
                        part = r.split(":", 5)[5] if r.count(":") >= 5 else ""
                        if part in ("*", "") or part.startswith("*"):
                            problems.append(f"{where}: resource {r} is not scoped")
            else:
                # A Deny may be broad (e.g. s3:* over insecure transport): it only takes away.
                if st.get("Effect") != "Deny":
                    problems.append(f"{where}: Effect must be Allow or Deny")
    return problems


def _commented(stack, sid):
    """True when the statement with this Sid has a YAML comment inside it."""
    lines = _read(os.path.join(cfn.TEMPLATE_DIR, f"{stack}.yaml")).splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"\s*- Sid: {re.escape(sid)}\s*$", line):
            for follow in lines[i + 1:]:
                if re.match(r"\s*- Sid:", follow):
                    break
                if follow.strip().startswith("#") and len(follow.strip()) > 20:
                    return True
    return False


def check_kms(templates):
    problems = []
    resolver = cfn.Resolver(templates)
    sec = templates["security"]
    if sec["Parameters"]["SecretsKeyAliasName"].get("Default") != "alias/ims-secrets-key":
        problems.append("the secrets key alias must default to alias/ims-secrets-key")
    via_sm = "secretsmanager.eu-west-1.amazonaws.com"
    use = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
           "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant"}
    key_policy = resolver.resolve("security", sec["Resources"]["SecretsKey"]["Properties"]["KeyPolicy"])
    task_role_arn = resolver.get_att("security", "TaskRole", "Arn")
    task_role_can_decrypt = False
    for st in _statements(key_policy):
        if st["Effect"] != "Allow":
            continue
        actions = set(cfn.as_list(st["Action"]))
        if actions & use:
            via = (st.get("Condition") or {}).get("StringEquals", {}).get("kms:ViaService")
            if via != via_sm:
                problems.append(f"SecretsKey/{st.get('Sid')}: key use without kms:ViaService={via_sm}")
            principals = cfn.as_list((st.get("Principal") or {}).get("AWS"))
            if task_role_arn in principals:
                task_role_can_decrypt = actions == {"kms:Decrypt"}
                if actions != {"kms:Decrypt"}:
                    problems.append("the task role may only kms:Decrypt with the secrets key")
    if not task_role_can_decrypt:
        problems.append("the secrets key policy must let the task role decrypt (through Secrets Manager)")
    # Every secret is encrypted with the secrets key.
    for stack, tpl in templates.items():
        for logical, res in _resources(tpl, "AWS::SecretsManager::Secret"):
            if res["Properties"].get("KmsKeyId") != {"Ref": "SecretsKey"} or stack != "security":
                problems.append(f"{stack}.{logical}: not encrypted with the secrets key")
    # Every identity-policy use of the secrets key goes through Secrets Manager.
    key_arn = resolver.get_att("security", "SecretsKey", "Arn")
    for stack, logical, kind, label, document in cfn.policy_documents(templates):
        if kind != "identity":
            continue
        for st in _statements(resolver.resolve(stack, document)):
            if key_arn in cfn.as_list(st.get("Resource")):
                via = (st.get("Condition") or {}).get("StringEquals", {}).get("kms:ViaService")
                if via != via_sm:
                    problems.append(f"{stack}.{label}: secrets key used without kms:ViaService={via_sm}")
    expected = {"JwtSigningKeysSecret", "OtpPepperSecret", "SmtpSecret", "AiApiKeySecret", "DatabaseSecret"}
    have = {l for l, _ in _resources(sec, "AWS::SecretsManager::Secret")}
    if have != expected:
        problems.append(f"secrets are {sorted(have)}, expected {sorted(expected)}")
    return problems


def check_task_role(templates):
    """The task role's permissions, exactly."""
    resolver = cfn.Resolver(templates)
    doc = resolver.resolve("security", templates["security"]["Resources"]["TaskRolePolicy"]["Properties"]["PolicyDocument"])
    got = {}
    for st in _statements(doc):
        for a in cfn.as_list(st["Action"]):
            got.setdefault(a, set()).update(cfn.as_list(st["Resource"]))
    a, r = cfn.ACCOUNT, cfn.REGION
    # IMS_SECRETS_ID names these two (check_task_definition asserts that it names exactly them).
    secrets = {resolver.ref("security", "JwtSigningKeysSecret"), resolver.ref("security", "DatabaseSecret")}
    key = resolver.get_att("security", "SecretsKey", "Arn")
    data_key = resolver.get_att("security", "DataKey", "Arn")
    docs = f"arn:aws:s3:::ims-prod-documents-{a}/documents/*"
    expected = {
        "s3:GetObject": {docs}, "s3:PutObject": {docs}, "s3:DeleteObject": {docs},
        "sqs:SendMessage": {f"arn:aws:sqs:{r}:{a}:ims-prod-events"},
        "sqs:ReceiveMessage": {f"arn:aws:sqs:{r}:{a}:ims-prod-events"},
        "sqs:DeleteMessage": {f"arn:aws:sqs:{r}:{a}:ims-prod-events"},
        "sns:Publish": {f"arn:aws:sns:{r}:{a}:ims-prod-status-updates"},
        "ses:SendEmail": {f"arn:aws:ses:{r}:{a}:identity/factory.example.com"},
        "ses:SendRawEmail": {f"arn:aws:ses:{r}:{a}:identity/factory.example.com"},
        "secretsmanager:GetSecretValue": secrets,
        "kms:Decrypt": {key, data_key},
        "kms:GenerateDataKey": {data_key},
    }
    problems = []
    if got != expected:
        problems.append(f"task role permissions differ:\n  got      {sorted((k, sorted(v)) for k, v in got.items())}\n  expected {sorted((k, sorted(v)) for k, v in expected.items())}")
    # The resources it names are the ones the other stacks create.
    names = {
        ("data", "DocumentsBucket"): f"ims-prod-documents-{a}",
        ("messaging", "EventsQueue"): f"https://sqs.{r}.amazonaws.com/{a}/ims-prod-events",
        ("messaging", "StatusUpdatesTopic"): f"arn:aws:sns:{r}:{a}:ims-prod-status-updates",
    }
    for (stack, logical), want in names.items():
        if resolver.ref(stack, logical) != want:
            problems.append(f"{stack}.{logical} is {resolver.ref(stack, logical)}, the task role expects {want}")
    return problems


def check_execution_role(templates):
    """The task execution role's permissions, exactly: pull the image, write the app's logs, read
    the secrets the task definition injects (not the database secret, which the app reads itself
    through IMS_SECRETS_ID), decrypt them through Secrets Manager."""
    resolver = cfn.Resolver(templates)
    doc = resolver.resolve("security", templates["security"]["Resources"]["TaskExecutionRolePolicy"]["Properties"]["PolicyDocument"])
    got = {}
    for st in _statements(doc):
        for a in cfn.as_list(st["Action"]):
            got.setdefault(a, set()).update(cfn.as_list(st["Resource"]))
    a, r = cfn.ACCOUNT, cfn.REGION
    repo = f"arn:aws:ecr:{r}:{a}:repository/ims-prod"
    injected = {resolver.ref("security", n) for n in ("OtpPepperSecret", "SmtpSecret", "AiApiKeySecret")}
    expected = {
        "ecr:BatchCheckLayerAvailability": {repo}, "ecr:BatchGetImage": {repo},
        "ecr:GetDownloadUrlForLayer": {repo}, "ecr:GetAuthorizationToken": {"*"},
        "logs:CreateLogStream": {f"arn:aws:logs:{r}:{a}:log-group:/ims/prod/app:log-stream:*"},
        "logs:PutLogEvents": {f"arn:aws:logs:{r}:{a}:log-group:/ims/prod/app:log-stream:*"},
        "secretsmanager:GetSecretValue": injected,
        "kms:Decrypt": {resolver.get_att("security", "SecretsKey", "Arn")},
    }
    problems = []
    if got != expected:
        problems.append(f"execution role permissions differ:\n  got      {sorted((k, sorted(v)) for k, v in got.items())}\n  expected {sorted((k, sorted(v)) for k, v in expected.items())}")
    # What the task definition injects is exactly what the role may read.
    c = templates["app"]["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    # ValueFrom is the secret's ARN, optionally followed by :json-key:version-stage:version-id.
    sources = {":".join(resolver.resolve("app", s["ValueFrom"]).split(":")[:7]) for s in c.get("Secrets") or []}
    if sources != injected:
        problems.append(f"the task definition injects from {sorted(sources)}, the execution role reads {sorted(injected)}")
    return problems


# ------------------------------------------------------------------ data at rest
def check_buckets(templates):
    problems = []
    for stack, tpl in templates.items():
        policies = {res["Properties"]["Bucket"].get("Ref"): res["Properties"]["PolicyDocument"]
                    for _, res in _resources(tpl, "AWS::S3::BucketPolicy")}
        for logical, res in _resources(tpl, "AWS::S3::Bucket"):
            p = res["Properties"]
            where = f"{stack}.{logical}"
            pab = p.get("PublicAccessBlockConfiguration") or {}
            if not all(pab.get(k) is True for k in
                       ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")):
                problems.append(f"{where}: public access not fully blocked")
            rules = (p.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
            algos = {r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules}
            if logical == "AccessLogBucket":
                if algos != {"AES256"}:  # ALB log delivery supports SSE-S3 only
                    problems.append(f"{where}: must be SSE-S3 encrypted")
            elif algos != {"aws:kms"} or not all(r["ServerSideEncryptionByDefault"].get("KMSMasterKeyID") for r in rules):
                problems.append(f"{where}: must be SSE-KMS with the data key")
            if logical != "AccessLogBucket" and (p.get("VersioningConfiguration") or {}).get("Status") != "Enabled":
                problems.append(f"{where}: versioning must be enabled")
            policy = policies.get(logical)
            tls_only = policy and any(
                st["Effect"] == "Deny" and st.get("Principal") == "*" and "s3:*" in cfn.as_list(st["Action"])
                and (st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                for st in _statements(policy))
            if not tls_only:
                problems.append(f"{where}: no TLS-only bucket policy")
    return problems


def check_rds(templates):
    problems = []
    data = templates["data"]
    db = data["Resources"]["Database"]["Properties"]
    for prop, want in (("StorageEncrypted", True), ("DeletionProtection", True), ("PubliclyAccessible", False)):
        if db.get(prop) is not want:
            problems.append(f"Database.{prop} must be {want}")
    if not db.get("KmsKeyId"):
        problems.append("Database must be encrypted with the data key")
    if db.get("MultiAZ") != {"Ref": "MultiAz"}:
        problems.append("Database.MultiAZ must be the MultiAz parameter")
    if "MasterUserPassword" in db and "{{resolve:secretsmanager:" not in str(db["MasterUserPassword"]):
        problems.append("the master password must come from Secrets Manager")
    # TLS only: the instance's parameter group (one of this template) sets rds.force_ssl to 1
    # explicitly (the default depends on the engine version: 0 before PostgreSQL 15).
    group = db.get("DBParameterGroupName")
    logical = group.get("Ref") if isinstance(group, dict) else None
    pg = data["Resources"].get(logical) if logical else None
    if not pg or pg.get("Type") != "AWS::RDS::DBParameterGroup":
        problems.append("Database must use a parameter group of data.yaml (it sets rds.force_ssl)")
    else:
        force_ssl = (pg["Properties"].get("Parameters") or {}).get("rds.force_ssl")
        if str(force_ssl) != "1":
            problems.append(f"{logical}: rds.force_ssl must be 1 (TLS only), is {force_ssl!r}")
    for _, r in _resources(data, "AWS::RDS::DBParameterGroup", "AWS::RDS::DBClusterParameterGroup"):
        if str((r["Properties"].get("Parameters") or {}).get("rds.force_ssl", "1")) != "1":
            problems.append("no parameter group may disable rds.force_ssl")
    rotations = [res for _, res in _resources(data, "AWS::SecretsManager::RotationSchedule")]
    if not any(r["Properties"].get("HostedRotationLambda", {}).get("RotationType") == "PostgreSQLSingleUser"
               and "DatabaseSecretArn" in str(r["Properties"]["SecretId"]) for r in rotations):
        problems.append("the database secret must be rotated by the PostgreSQLSingleUser hosted Lambda")
    return problems


def check_queues_topics_logs(templates):
    problems = []
    for stack, tpl in templates.items():
        queues = dict(_resources(tpl, "AWS::SQS::Queue"))
        dlq_targets = set()
        for logical, res in queues.items():
            p = res["Properties"]
            if not p.get("KmsMasterKeyId") and p.get("SqsManagedSseEnabled") is not True:
                problems.append(f"{stack}.{logical}: queue not encrypted")
            redrive = p.get("RedrivePolicy")
            if redrive:
                target = redrive.get("deadLetterTargetArn")
                if not (isinstance(target, dict) and target.get("Fn::GetAtt", [None])[0] in queues):
                    problems.append(f"{stack}.{logical}: dead-letter target is not a queue of this stack")
                else:
                    dlq_targets.add(target["Fn::GetAtt"][0])
        for logical in queues:
            if logical not in dlq_targets and not queues[logical]["Properties"].get("RedrivePolicy"):
                problems.append(f"{stack}.{logical}: a queue without a dead-letter queue")
        for logical, res in _resources(tpl, "AWS::SNS::Topic"):
            if not res["Properties"].get("KmsMasterKeyId"):
                problems.append(f"{stack}.{logical}: topic not encrypted")
        for logical, res in _resources(tpl, "AWS::Logs::LogGroup"):
            p = res["Properties"]
            if not p.get("RetentionInDays") or not p.get("KmsKeyId"):
                problems.append(f"{stack}.{logical}: log group needs retention and a KMS key")
    return problems


# ------------------------------------------------------------------ the app's contract
def known_variables():
    """IMS_* names the binary accepts (src/config.rs KNOWN_VARS and src/secrets KNOWN), or None
    when the source is not beside deploy/."""
    try:
        config = _read(os.path.join(REPO, "src", "config.rs"))
        secrets = _read(os.path.join(REPO, "src", "secrets", "mod.rs"))
    except OSError:
        return None
    plain = set(re.findall(r'"(IMS_[A-Z0-9_]+)"', re.search(r"KNOWN_VARS[^=]*=\s*&\[(.*?)\];", config, re.S).group(1)))
    names = re.findall(r'"([A-Z0-9_]+)"', re.search(r"pub const KNOWN[^=]*=\s*&\[(.*?)\];", secrets, re.S).group(1))
    return plain | {f"IMS_{n}" for n in names} | {f"IMS_{n}_FILE" for n in names}


def check_task_definition(templates):
    problems = []
    resolver = cfn.Resolver(templates)
    td = templates["app"]["Resources"]["TaskDefinition"]["Properties"]
    (c,) = td["ContainerDefinitions"]
    if c.get("ReadonlyRootFilesystem") is not True:
        problems.append("the container's root filesystem must be read-only")
    if not re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", str(c.get("User", ""))):
        problems.append("the container must run as a fixed non-root UID:GID")
    if c.get("Privileged"):
        problems.append("the container must not be privileged")
    env = [e for e in cfn.as_list(c.get("Environment"))]
    env_values = {}
    for e in env:
        e = resolver.resolve("app", e)
        if isinstance(e, dict) and "Name" in e:
            env_values[e["Name"]] = e.get("Value")
    env_names = set(env_values)
    secret_names = {s["Name"] for s in c.get("Secrets") or []}
    for name in env_names:
        if re.search(r"PASSWORD|PEPPER|API_KEY|SIGNING_KEYS|TOKEN", name):
            problems.append(f"{name} is a secret: it must come from Secrets, not Environment")
    for name in ("IMS_OTP_PEPPER", "IMS_AI_API_KEY"):
        if name not in secret_names:
            problems.append(f"{name} must be injected from Secrets Manager")
    for name in ROTATED_IN_STORE:
        for n in (name, f"{name}_FILE"):
            if n in env_names | secret_names:
                problems.append(f"{n} must not be set: {name[4:]} comes from IMS_SECRETS_ID only "
                                f"(an environment value wins over the store, so rotations would never apply)")
    # IMS_SECRETS_ID names exactly the JWT key set and the RDS credentials secret that the data
    # stack rotates (the task role may read exactly these, check_task_role).
    secrets_id = env_values.get("IMS_SECRETS_ID")
    want_ids = {resolver.ref("security", "JwtSigningKeysSecret"), resolver.ref("security", "DatabaseSecret")}
    if not secrets_id:
        problems.append("IMS_SECRETS_ID must be set")
    else:
        ids = [i.strip() for i in str(secrets_id).split(",") if i.strip()]
        if len(ids) != len(set(ids)) or set(ids) != want_ids:
            problems.append(f"IMS_SECRETS_ID is {secrets_id!r}, expected the JWT and database secrets {sorted(want_ids)}")
        rotation = templates["data"]["Resources"]["DatabaseSecretRotation"]["Properties"]["SecretId"]
        if resolver.resolve("data", rotation) not in ids:
            problems.append("IMS_SECRETS_ID must name the database secret that the data stack rotates")
    known = known_variables()
    if known is not None:
        for name in sorted((env_names | secret_names)):
            if name.startswith("IMS_") and name not in known:
                problems.append(f"{name} is not a variable IMS knows (it would refuse to start)")
    url = str(env_values.get("IMS_DATABASE_URL", "postgres://"))
    if ":" in url.split("//", 1)[1].split("@", 1)[0]:
        problems.append("IMS_DATABASE_URL must not carry a password")
    # TLS, verifying the server's certificate and name against the RDS CA bundle in the image.
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if query.get("sslmode") != ["verify-full"]:
        problems.append(f"IMS_DATABASE_URL must have sslmode=verify-full, has {query.get('sslmode')}")
    if query.get("sslrootcert") != [RDS_CA_BUNDLE]:
        problems.append(f"IMS_DATABASE_URL must have sslrootcert={RDS_CA_BUNDLE}, has {query.get('sslrootcert')}")
    endpoint = resolver.get_att("data", "Database", "Endpoint.Address")
    if parts.hostname != endpoint.lower():
        problems.append(f"IMS_DATABASE_URL's host is {parts.hostname}, expected the RDS endpoint address "
                        f"(the name in the server's certificate, which verify-full checks)")
    listen = env_values.get("IMS_LISTEN")
    port = resolver.parameter("security", "AppPort")
    if listen != f"0.0.0.0:{port}":
        problems.append(f"IMS_LISTEN {listen} does not match the app port {port}")
    if str(resolver.resolve("app", c["PortMappings"][0]["ContainerPort"])) != port:
        problems.append("the container port must be the app port")
    return problems


def check_metric_filters(templates):
    """Every metric filter matches log lines the app really writes: the messages it filters on
    appear in a tracing call in src/, and every required alarm exists and notifies the
    critical-alerts topic."""
    problems = []
    obs = templates["observability"]
    src = ""
    for root, _, files in os.walk(os.path.join(REPO, "src")):
        for f in files:
            if f.endswith(".rs"):
                src += _read(os.path.join(root, f))
    for logical, res in _resources(obs, "AWS::Logs::MetricFilter"):
        pattern = res["Properties"]["FilterPattern"]
        for field in re.findall(r"\$\.([a-z_.]+)", pattern):
            if field not in ("fields.message", "fields.status", "span.path"):
                problems.append(f"{logical}: filters on {field}, which the request/event log lines do not have")
        for message in re.findall(r'\$\.fields\.message = "([^"]+)"', pattern):
            if src and f'"{message}"' not in src:
                problems.append(f"{logical}: the app never logs {message!r}")
        for path in re.findall(r'\$\.span\.path = "([^"]+)"', pattern):
            if src and f'"{path}"' not in src:
                problems.append(f"{logical}: the app has no route {path}")
    alarms = {l: r["Properties"] for l, r in _resources(obs, "AWS::CloudWatch::Alarm")}
    needed = {"Http5xxRateAlarm", "FailedLoginAlarm", "LockedLoginAlarm", "RefreshReuseAlarm",
              "DeadLetterQueueAlarm", "DatabaseCpuAlarm", "DatabaseFreeStorageAlarm", "EcsCpuAlarm"}
    for name in sorted(needed - set(alarms)):
        problems.append(f"missing alarm {name}")
    topic = {"Fn::ImportValue": {"Fn::Sub": "ims-${EnvironmentName}-CriticalAlertsTopicArn"}}
    for name, p in alarms.items():
        if p.get("AlarmActions") != [topic]:
            problems.append(f"{name} must notify the critical-alerts topic")
    return problems


def check_imports(templates):
    problems = []
    try:
        resolver = cfn.Resolver(templates)
    except cfn.Unresolved as e:
        return [str(e)]

    def walk(stack, node):
        if isinstance(node, dict):
            if set(node) == {"Fn::ImportValue"}:
                try:
                    resolver.resolve(stack, node)
                except cfn.Unresolved as e:
                    problems.append(str(e))
                return
            for v in node.values():
                walk(stack, v)
        elif isinstance(node, list):
            for v in node:
                walk(stack, v)

    for stack, tpl in templates.items():
        walk(stack, tpl.get("Resources"))
        walk(stack, tpl.get("Outputs"))
    return problems


ALL = [
    check_imports,
    check_security_group_graph,
    check_listeners,
    check_no_wildcards,
    check_kms,
    check_task_role,
    check_execution_role,
    check_buckets,
    check_rds,
    check_queues_topics_logs,
    check_task_definition,
    check_metric_filters,
]
