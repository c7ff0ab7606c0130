"""Security properties of the IMS deployment (deploy/cloudformation, deploy/Dockerfile).

Run from the repository root:  python3 -m unittest discover -s deploy/tests
Each check in deploy/tools/checks.py must pass on the real templates, and each must FAIL on a
copy of the templates broken in the way it guards against (so a check that can never fail is
caught here too).
"""

import copy
import os
import re
import sys
import unittest
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import cfn  # noqa: E402
import checks  # noqa: E402

TEMPLATES = cfn.load_all()


def mutated(fn):
    t = copy.deepcopy(TEMPLATES)
    fn(t)
    return t


def res(t, stack, logical):
    return t[stack]["Resources"][logical]


class RealTemplates(unittest.TestCase):
    def test_every_check_passes(self):
        for check in checks.ALL:
            with self.subTest(check=check.__name__):
                self.assertEqual(check(TEMPLATES), [])

    def test_all_stacks_are_parameterised_by_environment(self):
        for stack, tpl in TEMPLATES.items():
            with self.subTest(stack=stack):
                self.assertIn("EnvironmentName", tpl["Parameters"])
                for out in (tpl.get("Outputs") or {}).values():
                    if "Export" in out:
                        self.assertTrue(out["Export"]["Name"]["Fn::Sub"].startswith("ims-${EnvironmentName}-"))

    def test_every_checkov_suppression_has_a_reason(self):
        for stack, tpl in TEMPLATES.items():
            for logical, r in tpl["Resources"].items():
                for skip in ((r.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
                    with self.subTest(resource=f"{stack}.{logical}", check=skip.get("id")):
                        self.assertRegex(skip.get("id", ""), r"^CKV2?_[A-Z]+_\d+$")
                        self.assertGreater(len(str(skip.get("comment", "")).split()), 8)

    def test_database_traffic_is_tls_with_verify_full(self):
        # IMS_DATABASE_URL verifies the server certificate (and its name) against the RDS CA
        # bundle the image carries; the parameter group refuses plaintext connections.
        resolver = cfn.Resolver(TEMPLATES)
        c = TEMPLATES["app"]["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
        env = {e["Name"]: e.get("Value") for e in resolver.resolve("app", c["Environment"]) if isinstance(e, dict)}
        query = parse_qs(urlsplit(env["IMS_DATABASE_URL"]).query)
        self.assertEqual(query.get("sslmode"), ["verify-full"])
        self.assertEqual(query.get("sslrootcert"), [checks.RDS_CA_BUNDLE])
        data = TEMPLATES["data"]["Resources"]
        group = data[data["Database"]["Properties"]["DBParameterGroupName"]["Ref"]]
        self.assertEqual(str(group["Properties"]["Parameters"].get("rds.force_ssl")), "1")
        for stack, tpl in TEMPLATES.items():
            for logical, r in tpl["Resources"].items():
                skips = ((r.get("Metadata") or {}).get("checkov") or {}).get("skip") or []
                self.assertNotIn("CKV2_AWS_69", [k.get("id") for k in skips], f"{stack}.{logical}")

    def test_database_password_comes_only_from_the_store(self):
        # DATABASE_PASSWORD from the RDS secret in IMS_SECRETS_ID, re-read every
        # IMS_SECRETS_REFRESH; the default refresh is short because new connections fail between
        # a rotation and the next read (deploy/README.md).
        c = TEMPLATES["app"]["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
        names = {e.get("Name") for e in c["Environment"] if isinstance(e, dict)} | {x["Name"] for x in c["Secrets"]}
        self.assertNotIn("IMS_DATABASE_PASSWORD", names)
        self.assertNotIn("IMS_DATABASE_PASSWORD_FILE", names)
        refresh = TEMPLATES["app"]["Parameters"]["SecretsRefresh"]["Default"]
        n, unit = int(refresh[:-1]), refresh[-1]
        self.assertLessEqual(n * {"s": 1, "m": 60, "h": 3600}[unit], 60, "IMS_SECRETS_REFRESH default")

    def test_the_allow_list_is_used(self):
        # Every allow-listed "*" resource is still needed; an unused entry would hide a new one.
        resolver = cfn.Resolver(TEMPLATES)
        used = set()
        for stack, logical, kind, label, doc in cfn.policy_documents(TEMPLATES):
            for st in cfn.as_list(doc.get("Statement")):
                if resolver.resolve(stack, st.get("Resource")) == "*":
                    used.add((stack, logical, st.get("Sid")))
        self.assertTrue(set(checks.STAR_RESOURCE_ALLOWED) <= used)


class Dockerfile(unittest.TestCase):
    text = checks._read(os.path.join(HERE, "..", "Dockerfile"))

    def final_stage(self):
        return self.text[[m.start() for m in re.finditer(r"^FROM ", self.text, re.M)][-1]:]

    def test_multi_stage_small_final_image(self):
        self.assertGreaterEqual(len(re.findall(r"^FROM ", self.text, re.M)), 3)
        self.assertRegex(self.final_stage(), r"^FROM (\$\{BASE_REGISTRY\}/)?(debian:12-slim|gcr\.io/distroless/cc-debian12)")

    def test_runs_as_fixed_non_root_user_with_health_check(self):
        final = self.final_stage()
        self.assertRegex(final, r"(?m)^USER [1-9]\d{3,}:[1-9]\d{3,}$")
        self.assertRegex(final, r"(?m)^HEALTHCHECK ")
        self.assertRegex(final, r"(?m)^EXPOSE 8080$")

    def test_rds_ca_bundle_in_the_final_image(self):
        # Downloaded over HTTPS (certificate verification on) in a build stage, copied to the path
        # IMS_DATABASE_URL's sslrootcert names.
        self.assertRegex(self.final_stage(),
                         rf"(?m)^COPY --from=(\w+) .*\S+ {re.escape(checks.RDS_CA_BUNDLE)}$")
        stage = re.search(rf"(?m)^COPY --from=(\w+) .* {re.escape(checks.RDS_CA_BUNDLE)}$", self.final_stage()).group(1)
        body = self.text[re.search(rf"(?m)^FROM .* AS {stage}$", self.text).end():]
        body = body[:re.search(r"(?m)^FROM ", body).start()]
        self.assertIn("https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem", body)
        self.assertIn("--proto '=https'", body)
        self.assertNotRegex(body, r"(?m)(\s-k\b|--insecure)")

    def test_no_secret_in_any_layer(self):
        for line in self.text.splitlines():
            if re.match(r"\s*(ARG|ENV)\b", line):
                self.assertNotRegex(line.upper(), r"PASSWORD|PEPPER|SECRET_KEY|API_KEY|SIGNING_KEYS|TOKEN|AWS_ACCESS|AWS_SECRET",
                                    line)
        ignore = checks._read(os.path.join(HERE, "..", "Dockerfile.dockerignore"))
        for pattern in ("**/.git", "**/target", "**/.env", "**/*.pem", "**/ims-data"):
            self.assertIn(pattern, ignore.splitlines())

    def test_only_known_variables(self):
        known = checks.known_variables()
        if known is None:
            self.skipTest("src/ not beside deploy/")
        for name in re.findall(r"\b(IMS_[A-Z0-9_]+)=", self.text):
            self.assertIn(name, known)


class ChecksCanFail(unittest.TestCase):
    """Each check against a template broken the way it guards against."""

    def assertFails(self, check, broken):
        self.assertNotEqual(check(broken), [], f"{check.__name__} did not notice")

    def test_extra_ingress_ssh_from_anywhere(self):
        def f(t):
            res(t, "security", "TaskSecurityGroup")["Properties"]["SecurityGroupIngress"] = [
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}]
        self.assertFails(checks.check_security_group_graph, mutated(f))

    def test_database_open_to_the_alb(self):
        def f(t):
            res(t, "security", "DatabaseFromTasksIngress")["Properties"]["SourceSecurityGroupId"] = \
                {"Fn::GetAtt": ["AlbSecurityGroup", "GroupId"]}
        self.assertFails(checks.check_security_group_graph, mutated(f))

    def test_tasks_open_to_the_internet(self):
        def f(t):
            p = res(t, "security", "TasksFromAlbIngress")["Properties"]
            del p["SourceSecurityGroupId"]
            p["CidrIp"] = "0.0.0.0/0"
        self.assertFails(checks.check_security_group_graph, mutated(f))

    def test_admin_rule_without_condition(self):
        def f(t):
            del res(t, "security", "DatabaseFromAdminIngress")["Condition"]
        self.assertFails(checks.check_security_group_graph, mutated(f))

    def test_public_tasks(self):
        def f(t):
            res(t, "app", "Service")["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] = "ENABLED"
        self.assertFails(checks.check_security_group_graph, mutated(f))

    def test_http_listener_forwarding(self):
        def f(t):
            res(t, "app", "HttpListener")["Properties"]["DefaultActions"] = [
                {"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}]
        self.assertFails(checks.check_listeners, mutated(f))

    def test_star_action(self):
        def f(t):
            res(t, "security", "TaskRolePolicy")["Properties"]["PolicyDocument"]["Statement"][0]["Action"] = "s3:*"
        self.assertFails(checks.check_no_wildcards, mutated(f))

    def test_star_resource(self):
        def f(t):
            res(t, "security", "TaskRolePolicy")["Properties"]["PolicyDocument"]["Statement"][1]["Resource"] = "*"
        self.assertFails(checks.check_no_wildcards, mutated(f))

    def test_unscoped_arn(self):
        def f(t):
            res(t, "security", "TaskRolePolicy")["Properties"]["PolicyDocument"]["Statement"][1]["Resource"] = \
                {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:*"}
        self.assertFails(checks.check_no_wildcards, mutated(f))

    def test_more_actions_on_an_allow_listed_star(self):
        def f(t):
            for st in res(t, "security", "TaskExecutionRolePolicy")["Properties"]["PolicyDocument"]["Statement"]:
                if st["Sid"] == "EcrLogin":
                    st["Action"] = ["ecr:GetAuthorizationToken", "ecr:DeleteRepository"]
        self.assertFails(checks.check_no_wildcards, mutated(f))

    def test_secrets_key_usable_outside_secrets_manager(self):
        def f(t):
            for st in res(t, "security", "SecretsKey")["Properties"]["KeyPolicy"]["Statement"]:
                if st["Sid"] == "TaskRolesDecryptOnlyThroughSecretsManager":
                    del st["Condition"]["StringEquals"]["kms:ViaService"]
        self.assertFails(checks.check_kms, mutated(f))

    def test_secret_with_default_key(self):
        def f(t):
            del res(t, "security", "AiApiKeySecret")["Properties"]["KmsKeyId"]
        self.assertFails(checks.check_kms, mutated(f))

    def test_task_role_grows(self):
        def f(t):
            res(t, "security", "TaskRolePolicy")["Properties"]["PolicyDocument"]["Statement"][0]["Action"].append("s3:GetObjectAcl")
        self.assertFails(checks.check_task_role, mutated(f))

    def test_task_role_cannot_read_the_database_secret(self):
        def f(t):
            for st in res(t, "security", "TaskRolePolicy")["Properties"]["PolicyDocument"]["Statement"]:
                if st["Sid"] == "ReadSecretsIdSecrets":
                    st["Resource"] = {"Ref": "JwtSigningKeysSecret"}
        self.assertFails(checks.check_task_role, mutated(f))

    def test_execution_role_reads_the_database_secret(self):
        def f(t):
            for st in res(t, "security", "TaskExecutionRolePolicy")["Properties"]["PolicyDocument"]["Statement"]:
                if st["Sid"] == "ReadInjectedSecrets":
                    st["Resource"].append({"Ref": "DatabaseSecret"})
        self.assertFails(checks.check_execution_role, mutated(f))

    def test_database_password_injected_by_ecs(self):
        # It would win over the store silently: the rotated password would never be used.
        def f(t):
            c = res(t, "app", "TaskDefinition")["Properties"]["ContainerDefinitions"][0]
            c["Secrets"].append({"Name": "IMS_DATABASE_PASSWORD", "ValueFrom": {"Fn::Sub": [
                "${Arn}:password::", {"Arn": {"Fn::ImportValue": {"Fn::Sub": "ims-${EnvironmentName}-DatabaseSecretArn"}}}]}})
        broken = mutated(f)
        self.assertFails(checks.check_task_definition, broken)
        self.assertFails(checks.check_execution_role, broken)

    def test_secrets_id_without_the_database_secret(self):
        def f(t):
            c = res(t, "app", "TaskDefinition")["Properties"]["ContainerDefinitions"][0]
            for e in c["Environment"]:
                if isinstance(e, dict) and e.get("Name") == "IMS_SECRETS_ID":
                    e["Value"] = {"Fn::ImportValue": {"Fn::Sub": "ims-${EnvironmentName}-JwtSigningKeysSecretArn"}}
        self.assertFails(checks.check_task_definition, mutated(f))

    def test_database_url_without_verify_full(self):
        def with_url(text):
            def f(t):
                c = res(t, "app", "TaskDefinition")["Properties"]["ContainerDefinitions"][0]
                for e in c["Environment"]:
                    if isinstance(e, dict) and e.get("Name") == "IMS_DATABASE_URL":
                        e["Value"]["Fn::Sub"][0] = text
            return mutated(f)
        for text in ("postgres://${User}@${Host}:${Port}/ims",
                     "postgres://${User}@${Host}:${Port}/ims?sslmode=require&sslrootcert=/app/certs/rds-global-bundle.pem",
                     "postgres://${User}@${Host}:${Port}/ims?sslmode=verify-full",
                     "postgres://${User}@db.internal.example:${Port}/ims?sslmode=verify-full&sslrootcert=/app/certs/rds-global-bundle.pem"):
            with self.subTest(url=text):
                self.assertFails(checks.check_task_definition, with_url(text))

    def test_database_accepts_plaintext(self):
        def f(t):
            res(t, "data", "DatabaseParameterGroup")["Properties"]["Parameters"]["rds.force_ssl"] = "0"
        self.assertFails(checks.check_rds, mutated(f))

        def g(t):
            del res(t, "data", "DatabaseParameterGroup")["Properties"]["Parameters"]["rds.force_ssl"]
        self.assertFails(checks.check_rds, mutated(g))

        def h(t):
            del res(t, "data", "Database")["Properties"]["DBParameterGroupName"]
        self.assertFails(checks.check_rds, mutated(h))

    def test_bucket_without_versioning_or_tls_policy(self):
        def f(t):
            del res(t, "data", "DocumentsBucket")["Properties"]["VersioningConfiguration"]
        self.assertFails(checks.check_buckets, mutated(f))

        def g(t):
            del t["data"]["Resources"]["DocumentsBucketPolicy"]
        self.assertFails(checks.check_buckets, mutated(g))

        def h(t):
            res(t, "data", "DocumentsBucket")["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] = False
        self.assertFails(checks.check_buckets, mutated(h))

    def test_unencrypted_or_public_database(self):
        for prop, value in (("StorageEncrypted", False), ("DeletionProtection", False), ("PubliclyAccessible", True)):
            def f(t, prop=prop, value=value):
                res(t, "data", "Database")["Properties"][prop] = value
            self.assertFails(checks.check_rds, mutated(f))

    def test_queue_without_encryption_or_dead_letter_queue(self):
        def f(t):
            del res(t, "messaging", "EventsQueue")["Properties"]["KmsMasterKeyId"]
        self.assertFails(checks.check_queues_topics_logs, mutated(f))

        def g(t):
            del res(t, "messaging", "EventsQueue")["Properties"]["RedrivePolicy"]
        self.assertFails(checks.check_queues_topics_logs, mutated(g))

    def test_log_group_without_retention(self):
        def f(t):
            del res(t, "observability", "AppLogGroup")["Properties"]["RetentionInDays"]
        self.assertFails(checks.check_queues_topics_logs, mutated(f))

    def test_secret_in_plain_environment_or_unknown_variable(self):
        def f(t):
            c = res(t, "app", "TaskDefinition")["Properties"]["ContainerDefinitions"][0]
            c["Environment"].append({"Name": "IMS_DATABASE_PASSWORD", "Value": "hunter2"})
        self.assertFails(checks.check_task_definition, mutated(f))

        def g(t):
            c = res(t, "app", "TaskDefinition")["Properties"]["ContainerDefinitions"][0]
            c["Environment"].append({"Name": "IMS_TYPO", "Value": "x"})
        if checks.known_variables() is not None:
            self.assertFails(checks.check_task_definition, mutated(g))

        def h(t):
            res(t, "app", "TaskDefinition")["Properties"]["ContainerDefinitions"][0]["ReadonlyRootFilesystem"] = False
        self.assertFails(checks.check_task_definition, mutated(h))

    def test_metric_filter_on_a_message_the_app_never_logs(self):
        if checks.known_variables() is None:
            self.skipTest("src/ not beside deploy/")

        def f(t):
            res(t, "observability", "RefreshReuseFilter")["Properties"]["FilterPattern"] = \
                '{ $.fields.message = "refresh token reused" }'
        self.assertFails(checks.check_metric_filters, mutated(f))

    def test_parliament_notices_a_bad_policy(self):
        try:
            import parliament_check
        except ImportError:
            self.skipTest("parliament is not installed (deploy/check.sh runs this in its venv)")
        self.assertEqual([r for r in parliament_check.findings(TEMPLATES) if r[3]], [])

        def f(t):
            st = res(t, "security", "TaskRolePolicy")["Properties"]["PolicyDocument"]["Statement"]
            st.append({"Effect": "Allow", "Action": "s3:GetObjekt",
                       "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::ims-${EnvironmentName}-documents-${AWS::AccountId}/x"}})
            st.append({"Effect": "Allow", "Action": "sqs:SendMessage",
                       "Resource": {"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:ims-x"}})
        bad = [r for r in parliament_check.findings(mutated(f)) if r[3]]
        self.assertEqual([r[1] for r in bad], ["TaskRolePolicy"])
        self.assertEqual({f.issue for f in bad[0][3]}, {"UNKNOWN_ACTION", "RESOURCE_MISMATCH"})

    def test_import_without_export(self):
        def f(t):
            del t["security"]["Outputs"]["TaskRoleArn"]
        self.assertFails(checks.check_imports, mutated(f))


if __name__ == "__main__":
    unittest.main()
