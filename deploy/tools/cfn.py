"""Reads the IMS CloudFormation templates offline.

- `load(path)` parses a template with the short-form intrinsic tags (!Ref, !Sub, ...) turned into
  their long form ({"Ref": ...}, {"Fn::Sub": ...}).
- `Resolver` turns intrinsic functions into concrete placeholder values (a fixed account, region
  and environment; ARNs shaped like the real ones), following !ImportValue across the stacks
  through their Outputs/Export names, so IAM policies can be handed to parliament and the tests
  can follow references between stacks (e.g. which security group a rule points at).
"""

import json
import os
import re

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_DIR = os.path.normpath(os.path.join(HERE, "..", "cloudformation"))
STACKS = ["network", "security", "data", "messaging", "observability", "pipeline", "app"]

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PARTITION = "aws"

# Values for parameters that have no default.
PLACEHOLDER_PARAMETERS = {
    "CertificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0a1b2c3d-0000-4000-8000-000000000000",
    "PublicDomain": "ims.factory.example.com",
    "ImageTag": "0123456789ab",
    "ConnectionArn": f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/0a1b2c3d-0000-4000-8000-000000000001",
    "RepositoryId": "example/ims",
}

_TAGS = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    "!Sub": "Fn::Sub",
    "!GetAtt": "Fn::GetAtt",
    "!ImportValue": "Fn::ImportValue",
    "!Join": "Fn::Join",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!If": "Fn::If",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!And": "Fn::And",
    "!Or": "Fn::Or",
    "!GetAZs": "Fn::GetAZs",
    "!FindInMap": "Fn::FindInMap",
    "!Base64": "Fn::Base64",
    "!Cidr": "Fn::Cidr",
}


class _Loader(yaml.SafeLoader):
    pass


def _construct(long_name):
    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_name: value}

    return construct


for _tag, _long in _TAGS.items():
    _Loader.add_constructor(_tag, _construct(_long))


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)


def load_all():
    """{stack name: template} for every stack, in deployment order."""
    return {name: load(os.path.join(TEMPLATE_DIR, f"{name}.yaml")) for name in STACKS}


class NoValue:
    """AWS::NoValue: dropped from lists and mappings."""


NO_VALUE = NoValue()


class Unresolved(Exception):
    pass


class Resolver:
    def __init__(self, templates, environment="prod"):
        self.templates = templates
        self.environment = environment
        self.exports = {}
        # Exports may depend on imports of earlier stacks: resolve in deployment order.
        for name in STACKS:
            tpl = templates[name]
            for out_name, out in (tpl.get("Outputs") or {}).items():
                export = out.get("Export")
                if not export:
                    continue
                export_name = self.resolve(name, export["Name"])
                self.exports[export_name] = (name, out["Value"])

    # -------------------------------------------------------------- parameters and conditions
    def parameter(self, stack, name):
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": f"ims-{self.environment}-{stack}",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        params = self.templates[stack].get("Parameters") or {}
        if name not in params:
            return None
        if name == "EnvironmentName":
            return self.environment
        if "Default" in params[name]:
            return str(params[name]["Default"])
        if name in PLACEHOLDER_PARAMETERS:
            return PLACEHOLDER_PARAMETERS[name]
        raise Unresolved(f"{stack}: parameter {name} has no default and no placeholder")

    def condition(self, stack, name):
        cond = (self.templates[stack].get("Conditions") or {})[name]
        return self._eval_condition(stack, cond)

    def _eval_condition(self, stack, node):
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Fn::Equals":
                a, b = (self.resolve(stack, x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self._eval_condition(stack, arg[0])
            if key == "Fn::And":
                return all(self._eval_condition(stack, x) for x in arg)
            if key == "Fn::Or":
                return any(self._eval_condition(stack, x) for x in arg)
            if key == "Condition":
                return self.condition(stack, arg)
        raise Unresolved(f"{stack}: cannot evaluate condition {node!r}")

    # -------------------------------------------------------------- resources
    def resource(self, stack, logical):
        return (self.templates[stack].get("Resources") or {}).get(logical)

    def _prop(self, stack, logical, prop, fallback):
        res = self.resource(stack, logical)
        value = (res.get("Properties") or {}).get(prop)
        return self.resolve(stack, value) if value is not None else fallback

    def ref(self, stack, logical):
        value = self.parameter(stack, logical)
        if value is not None:
            return value
        res = self.resource(stack, logical)
        if res is None:
            raise Unresolved(f"{stack}: Ref to unknown {logical}")
        t = res["Type"]
        a, r = ACCOUNT, REGION
        if t == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{r}:{a}:secret:{self._prop(stack, logical, 'Name', logical)}-AbCdEf"
        if t == "AWS::S3::Bucket":
            return self._prop(stack, logical, "BucketName", logical.lower())
        if t == "AWS::SQS::Queue":
            return f"https://sqs.{r}.amazonaws.com/{a}/{self._prop(stack, logical, 'QueueName', logical)}"
        if t == "AWS::SNS::Topic":
            return f"arn:aws:sns:{r}:{a}:{self._prop(stack, logical, 'TopicName', logical)}"
        if t == "AWS::KMS::Key":
            return self._key_id(stack, logical)
        if t == "AWS::EC2::SecurityGroup":
            return self.sg_id(stack, logical)
        for prop in ("RoleName", "UserName", "GroupName", "LogGroupName", "RepositoryName",
                     "Name", "ClusterName", "ServiceName", "DBInstanceIdentifier"):
            if prop in (res.get("Properties") or {}):
                return self._prop(stack, logical, prop, logical)
        return f"{stack}-{logical}"

    def _key_id(self, stack, logical):
        return f"00000000-0000-4000-8000-{abs(hash((stack, logical))) % 10**12:012d}"

    @staticmethod
    def sg_id(stack, logical):
        return f"sg-{stack}.{logical}"

    def get_att(self, stack, logical, attr):
        res = self.resource(stack, logical)
        if res is None:
            raise Unresolved(f"{stack}: GetAtt on unknown {logical}")
        t = res["Type"]
        a, r = ACCOUNT, REGION
        name = self.ref(stack, logical)
        if attr == "Arn":
            arns = {
                "AWS::IAM::Role": f"arn:aws:iam::{a}:role/{name}",
                "AWS::IAM::User": f"arn:aws:iam::{a}:user/{name}",
                "AWS::KMS::Key": f"arn:aws:kms:{r}:{a}:key/{name}",
                "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
                "AWS::SQS::Queue": f"arn:aws:sqs:{r}:{a}:{name.rsplit('/', 1)[-1]}",
                "AWS::Logs::LogGroup": f"arn:aws:logs:{r}:{a}:log-group:{name}:*",
                "AWS::ECR::Repository": f"arn:aws:ecr:{r}:{a}:repository/{name}",
                "AWS::CodeBuild::Project": f"arn:aws:codebuild:{r}:{a}:project/{name}",
            }
            if t in arns:
                return arns[t]
            return f"arn:aws:{t.split('::')[1].lower()}:{r}:{a}:{logical}"
        if attr == "GroupId":
            return self.sg_id(stack, logical)
        if attr == "QueueName":
            return name.rsplit("/", 1)[-1]
        if attr == "RepositoryUri":
            return f"{a}.dkr.ecr.{r}.amazonaws.com/{name}"
        if attr == "CidrBlock":
            return self._prop(stack, logical, "CidrBlock", "10.0.0.0/16")
        return f"{stack}.{logical}.{attr}"

    # -------------------------------------------------------------- intrinsic functions
    def resolve(self, stack, node):
        if isinstance(node, list):
            out = [self.resolve(stack, x) for x in node]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(stack, arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(stack, logical, attr)
            if key == "Fn::Sub":
                return self._sub(stack, arg)
            if key == "Fn::ImportValue":
                export_name = self.resolve(stack, arg)
                if export_name not in self.exports:
                    raise Unresolved(f"{stack}: no stack exports {export_name}")
                src_stack, value = self.exports[export_name]
                return self.resolve(src_stack, value)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.resolve(stack, items))
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(stack, text)).split(sep)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(stack, items)[int(self.resolve(stack, index))]
            if key == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(stack, yes if self.condition(stack, name) else no)
        return {k: v for k, v in ((k, self.resolve(stack, v)) for k, v in node.items())
                if v is not NO_VALUE}

    def _sub(self, stack, arg):
        if isinstance(arg, list):
            text, variables = arg
            variables = {k: self.resolve(stack, v) for k, v in variables.items()}
        else:
            text, variables = arg, {}

        def repl(match):
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and not expr.startswith("AWS::"):
                logical, attr = expr.split(".", 1)
                return str(self.get_att(stack, logical, attr))
            return str(self.ref(stack, expr))

        return re.sub(r"\$\{([^}]+)\}", repl, text)


# ------------------------------------------------------------------ policy documents
IDENTITY_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
RESOURCE_POLICY_PROPS = {
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SQS::QueueInlinePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SNS::TopicInlinePolicy": "PolicyDocument",
}


def policy_documents(templates):
    """Every policy document in the templates, raw (unresolved):
    yields (stack, logical id, kind, label, document) with kind "identity", "resource" or "trust"."""
    for stack, tpl in templates.items():
        for logical, res in (tpl.get("Resources") or {}).items():
            t = res.get("Type")
            props = res.get("Properties") or {}
            if t in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
                for pol in props.get("Policies") or []:
                    yield stack, logical, "identity", f"{logical}/{pol['PolicyName']}", pol["PolicyDocument"]
                if "AssumeRolePolicyDocument" in props:
                    yield stack, logical, "trust", f"{logical}/trust", props["AssumeRolePolicyDocument"]
            elif t in IDENTITY_POLICY_TYPES:
                yield stack, logical, "identity", logical, props["PolicyDocument"]
            elif t in RESOURCE_POLICY_PROPS:
                yield stack, logical, "resource", logical, props[RESOURCE_POLICY_PROPS[t]]


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def resolved_json(resolver, stack, document):
    return json.dumps(resolver.resolve(stack, document), indent=2, sort_keys=True)
