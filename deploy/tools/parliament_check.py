"""Runs parliament on every IAM policy document in deploy/cloudformation/*.yaml.

Intrinsic functions are resolved to placeholder ARNs (tools/cfn.py) so parliament sees the real
shape of each resource ARN. Identity policies (role, group and stand-alone policies) and resource
policies (KMS key, S3 bucket, SQS queue, SNS topic policies) are all checked with parliament's
default auditors and configuration, as its command line would; trust policies are skipped
(parliament has nothing to say about sts:AssumeRole documents). In a KMS key policy
"Resource": "*" means "this key": parliament is given the key's ARN (and its aliases' ARNs, for
the key side of the alias actions) instead. Exit status 1 on any finding.
"""

import sys

from parliament import analyze_policy_string, config, enhance_finding
from parliament.cli import is_finding_filtered

import cfn


def _aliases_of(resolver, stack, key_logical):
    arns = []
    for res in (resolver.templates[stack].get("Resources") or {}).values():
        if res["Type"] == "AWS::KMS::Alias" and res["Properties"]["TargetKeyId"] == {"Ref": key_logical}:
            name = resolver.resolve(stack, res["Properties"]["AliasName"])
            arns.append(f"arn:aws:kms:{cfn.REGION}:{cfn.ACCOUNT}:{name}")
    return arns


def _this_key(document, key_arns):
    statements = []
    for st in cfn.as_list(document.get("Statement")):
        st = dict(st)
        if st.get("Resource") == "*":
            st["Resource"] = key_arns
        statements.append(st)
    return {**document, "Statement": statements}


def findings(templates):
    """[(stack, label, kind, [finding, ...])] for every non-trust policy document."""
    resolver = cfn.Resolver(templates)
    out = []
    for stack, logical, kind, label, document in cfn.policy_documents(templates):
        if kind == "trust":
            continue
        if resolver.resource(stack, logical)["Type"] == "AWS::KMS::Key":
            document = _this_key(document, [resolver.get_att(stack, logical, "Arn")]
                                 + _aliases_of(resolver, stack, logical))
        text = cfn.resolved_json(resolver, stack, document)
        policy = analyze_policy_string(text, config=config)
        found = [enhance_finding(f) for f in policy.findings]
        found = [f for f in found if not is_finding_filtered(f, "LOW")]
        out.append((stack, label, kind, found))
    return out


def main():
    results = findings(cfn.load_all())
    failures = 0
    for stack, label, kind, found in results:
        if found:
            failures += 1
            print(f"FAIL {stack}.yaml {label} ({kind} policy):")
            for f in found:
                print(f"  {f.severity} {f.issue}: {f.title} {f.detail} {f.location}")
        else:
            print(f"ok   {stack}.yaml {label} ({kind} policy)")
    print(f"parliament: {len(results)} policy documents, {failures} with findings")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
