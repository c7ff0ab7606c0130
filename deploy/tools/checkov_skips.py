"""Lists every checkov suppression in deploy/cloudformation with its reason (for the CI log)."""

import cfn

for stack, tpl in cfn.load_all().items():
    for logical, res in (tpl.get("Resources") or {}).items():
        for skip in ((res.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
            reason = " ".join(str(skip.get("comment", "")).split())
            print(f"suppressed {skip['id']} on {stack}.yaml {logical}: {reason}")
