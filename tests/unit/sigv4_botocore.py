"""Signs random S3 requests with Debian's python3-botocore and prints them,
one per line, for test_sigv4.c to sign again and compare.

    /usr/bin/python3 tests/unit/sigv4_botocore.py COUNT SEED

Each line is tab-separated hex-encoded fields (so any byte survives):
method, raw key path, query count, query name/value pairs, header count,
header name/value pairs (what the signer must sign, host included), body
or "" for an unsigned payload, access key, secret key, session token,
region, epoch seconds, then botocore's canonical request and its
Authorization header.
"""

import datetime
import random
import sys
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
KEYCHARS = ALPHA + "-_.~!$&'()*+,;=:@ %/" + "\u00e9\u1234\U0001f600"
QCHARS = ALPHA + "-_.~ !$&'()*+,;=:@/?%#[]\u00e9\u1234"


def rstr(r, chars, lo, hi):
    return "".join(r.choice(chars) for _ in range(r.randint(lo, hi)))


def hx(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return s.hex()


def one(r):
    method = r.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
    key = "/" + "/".join(rstr(r, KEYCHARS.replace("/", ""), 1, 12) for _ in range(r.randint(1, 4)))
    params = {}
    for _ in range(r.randint(0, 4)):
        params[rstr(r, QCHARS, 1, 10)] = r.choice(["", rstr(r, QCHARS, 0, 16)])
    creds = Credentials(rstr(r, ALPHA, 16, 20).upper(), rstr(r, ALPHA + "/+", 40, 40),
                        rstr(r, ALPHA + "/+=", 20, 80) if r.random() < 0.4 else None)
    region = r.choice(["us-east-1", "eu-west-3", "ap-southeast-2", "auto", "garage"])
    when = datetime.datetime(2010, 1, 1) + datetime.timedelta(seconds=r.randint(0, 600000000))
    host = r.choice(["bucket.s3.amazonaws.com", "127.0.0.1:9000", "s3.eu-west-3.amazonaws.com",
                     "localhost:4568"])
    unsigned = r.random() < 0.3
    body = bytes(r.getrandbits(8) for _ in range(r.randint(0, 64)))
    headers = {}
    for _ in range(r.randint(0, 3)):
        name = "x-amz-meta-" + rstr(r, ALPHA.lower() + "-", 1, 10)
        headers[name] = rstr(r, ALPHA + "  \t-_.:", 0, 20)
    if r.random() < 0.5:
        headers["Range"] = "bytes=%d-%d" % (r.randint(0, 99), r.randint(100, 999))
    if r.random() < 0.3:
        headers["Content-Type"] = "application/octet-stream"

    url = "https://" + host + quote(key, safe="/~")
    req = AWSRequest(method=method, url=url, data=body, headers=headers, params=params)
    req.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    req.context["payload_signing_enabled"] = not unsigned
    auth = S3SigV4Auth(creds, "s3", region)
    auth._modify_request_before_signing(req)
    cr = auth.canonical_request(req)
    sts = auth.string_to_sign(req, cr)
    sig = auth.signature(sts, req)
    auth._inject_signature_to_request(req, sig)

    signed = [("host", host)] + [(k, v) for k, v in req.headers.items()
                                 if k.lower() not in ("authorization", "user-agent")]
    epoch = int((when - datetime.datetime(1970, 1, 1)).total_seconds())
    f = [hx(method), hx(key), "%d" % len(params)]
    for k, v in params.items():
        f += [hx(k), hx(v)]
    f.append("%d" % len(signed))
    for k, v in signed:
        f += [hx(k), hx(v)]
    unsigned = req.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    f += [hx(body) if not unsigned else "-", hx(creds.access_key), hx(creds.secret_key),
          hx(creds.token or ""), hx(region), "%d" % epoch, hx(cr), hx(req.headers["Authorization"])]
    return "\t".join(f)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    r = random.Random(seed)
    for _ in range(count):
        print(one(r))


if __name__ == "__main__":
    main()
