#!/usr/bin/env python3
"""Directory sync from Request Tracker 5 to signoff (python3 standard library only).

Reads RT's users through REST2 and upserts each privileged one to signoff as
`PUT {signoff}/v1/principals/{RT user Name}`:

    {"kind": "technician", "display_name": RealName or Name, "email": EmailAddress,
     "locale": first two letters of Lang or "en", "time_zone": "UTC",
     "roles": [names of the user-defined RT groups the user is in, nested groups included],
     "active": not Disabled, "manager_id": the user's "Manager" custom field, when set}

With --unprivileged, unprivileged users (requesters who only use e-mail or the self-service
pages) are sent too, as kind "end_user", so that rules can reach a requester's manager.

RT side: the RT user needs the AdminUsers right (root has it) to see other users' e-mail
addresses, Disabled and group memberships; without it REST2 answers only the fields named in
$UserSummaryExtraInfo. signoff side: a token with the directory:write scope.

REST2 calls made: GET /groups (user-defined groups, id -> Name), GET /users (every page, with
find_disabled_rows=1 so disabled users are deactivated in signoff), then GET /user/{id} for each
user: only the single-user answer carries Privileged, Disabled and Memberships (the list answers
"" for both flags).

Exit status: 0 when every principal was accepted, 1 when some were refused or RT/signoff could
not be read, 2 for bad arguments.
"""

import argparse
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

SYSTEM_USERS = {"RT_System", "Nobody"}


class HttpError(Exception):
    def __init__(self, method, url, status, body):
        super().__init__(f"{method} {url}: {status} {body[:500]}")
        self.status = status
        self.body = body


def request(method, url, headers, body=None, timeout=30):
    data = None
    headers = dict(headers)
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            raw = res.read().decode("utf-8", "replace")
            return res.status, (json.loads(raw) if raw.strip() else None)
    except urllib.error.HTTPError as e:
        raise HttpError(method, url, e.code, e.read().decode("utf-8", "replace")) from None
    except urllib.error.URLError as e:
        raise HttpError(method, url, None, str(e.reason)) from None


class RT:
    def __init__(self, url, user, password):
        self.base = url.rstrip("/") + "/REST/2.0"
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}

    def get(self, path, **params):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return request("GET", url, self.headers)[1]

    def pages(self, path, **params):
        """Every item of a REST2 collection, page by page (100 per page, REST2's maximum)."""
        page = 1
        while True:
            answer = self.get(path, per_page=100, page=page, **params)
            yield from answer.get("items") or []
            pages = answer.get("pages")
            if not answer.get("items") or (pages is not None and page >= pages) \
                    or (pages is None and not answer.get("next_page")):
                return
            page += 1


def plausible_email(s):
    """What signoff accepts as an e-mail address (src/domain/validate.rs is_email)."""
    if not s or len(s) > 254 or "@" not in s or any(c.isspace() for c in s):
        return False
    local, domain = s.rsplit("@", 1)
    return bool(local) and len(local) <= 64 and "." in domain \
        and not domain.startswith(".") and not domain.endswith(".")


def valid_id(s):
    """What signoff accepts as a principal id: printable, no whitespace, no slash, <= 200 bytes."""
    return bool(s) and len(s.encode()) <= 200 and "/" not in s \
        and not any(c.isspace() or not c.isprintable() for c in s)


def custom_field(user, name):
    for cf in user.get("CustomFields") or []:
        if cf.get("name") == name:
            values = [v for v in cf.get("values") or [] if isinstance(v, str) and v.strip()]
            return values[0].strip() if values else None
    return None


def locale_of(lang):
    lang = (lang or "").strip()
    if len(lang) >= 2 and lang[:2].isalpha() and lang[:2].isascii():
        return lang[:2].lower()
    return "en"


def principal_of(user, group_names, kind, time_zone, warn):
    name = user["Name"]
    groups = []
    for m in user.get("Memberships") or []:
        g = group_names.get(str(m.get("id")))
        if g and 1 <= len(g) <= 100 and g.strip() and g not in groups:
            groups.append(g)
    body = {
        "kind": kind,
        "display_name": (user.get("RealName") or "").strip()[:200] or name,
        "locale": locale_of(user.get("Lang")),
        "time_zone": time_zone,
        "roles": sorted(groups),
        "active": str(user.get("Disabled") or "0") not in ("1", "true"),
    }
    email = (user.get("EmailAddress") or "").strip()
    if email:
        if plausible_email(email):
            body["email"] = email
        else:
            warn(f"{name}: e-mail address {email!r} left out (signoff would refuse it)")
    manager = custom_field(user, "Manager")
    if manager:
        if valid_id(manager) and manager != name:
            body["manager_id"] = manager
        else:
            warn(f"{name}: Manager {manager!r} left out (not a valid principal id)")
    return body


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rt-url", default=os.environ.get("RT_URL"), help="e.g. https://rt.example.com (no /REST/2.0)")
    ap.add_argument("--rt-user", default=os.environ.get("RT_USER", "root"))
    ap.add_argument("--rt-password", default=os.environ.get("RT_PASSWORD"))
    ap.add_argument("--signoff-url", default=os.environ.get("SIGNOFF_URL"))
    ap.add_argument("--token", default=os.environ.get("SIGNOFF_TOKEN"), help="bearer token with directory:write")
    ap.add_argument("--unprivileged", action="store_true", help="also send unprivileged users, as kind end_user")
    ap.add_argument("--exclude", action="append", default=None, metavar="NAME",
                    help="RT user not to send (repeatable; default: signoff, the service account)")
    ap.add_argument("--time-zone", default="UTC", help="time_zone sent for every user (RT's per-user Timezone is not read)")
    ap.add_argument("--dry-run", action="store_true", help="print the principals instead of sending them")
    args = ap.parse_args(argv)
    missing = [n for n in ("rt_url", "rt_password") if not getattr(args, n)]
    if not args.dry_run:
        missing += [n for n in ("signoff_url", "token") if not getattr(args, n)]
    if missing:
        ap.error("missing " + ", ".join("--" + n.replace("_", "-") for n in missing))

    def warn(msg):
        print(f"sync: warning: {msg}", file=sys.stderr)

    excluded = SYSTEM_USERS | set(args.exclude if args.exclude is not None else ["signoff"])
    rt = RT(args.rt_url, args.rt_user, args.rt_password)
    try:
        group_names = {str(g["id"]): g.get("Name") for g in rt.pages("/groups", fields="Name")}
        listed = list(rt.pages("/users", fields="Name", find_disabled_rows=1))
    except HttpError as e:
        print(f"sync: cannot read RT: {e}", file=sys.stderr)
        return 1

    sent = skipped = failed = 0
    signoff = (args.signoff_url or "").rstrip("/")
    auth = {"Authorization": f"Bearer {args.token}", "Accept": "application/json"}
    for item in listed:
        name = item.get("Name") or item.get("id")
        if name in excluded:
            continue
        try:
            user = rt.get("/user/" + urllib.parse.quote(str(item["id"]), safe=""))
        except HttpError as e:
            warn(f"{name}: cannot read from RT: {e}")
            failed += 1
            continue
        if "Disabled" not in user:
            print(f"sync: RT user {args.rt_user} lacks AdminUsers: {name}'s details are hidden", file=sys.stderr)
            return 1
        privileged = str(user.get("Privileged")) == "1"
        if not privileged and not args.unprivileged:
            skipped += 1
            continue
        if not valid_id(name):
            warn(f"{name!r}: skipped, signoff ids may not hold spaces or slashes")
            skipped += 1
            continue
        body = principal_of(user, group_names, "technician" if privileged else "end_user", args.time_zone, warn)
        if args.dry_run:
            print(json.dumps({"id": name, **body}, ensure_ascii=False))
            sent += 1
            continue
        url = f"{signoff}/v1/principals/{urllib.parse.quote(name, safe='@.+-_~')}"
        try:
            request("PUT", url, auth, body)
            sent += 1
        except HttpError as e:
            print(f"sync: {name}: signoff refused: {e}", file=sys.stderr)
            failed += 1
    verb = "would send" if args.dry_run else "sent"
    print(f"sync: {verb} {sent} principals, skipped {skipped}, failed {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
