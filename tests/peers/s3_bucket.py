#!/usr/bin/env python3
"""Bucket set-up and tamper trials for the S3 tests (tests/bucket_support), with boto3 against a
local S3-compatible server (moto_server). The endpoint and keys come from the environment the
way AWS tools find them (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION), the same variables secpipe reads.

    s3_bucket.py create BUCKET --lock DAYS|--no-lock   versioning on; with --lock, Object Lock
                                                       with COMPLIANCE default retention of DAYS
    s3_bucket.py overwrite BUCKET KEY                  PUT other bytes over KEY (a new version)
    s3_bucket.py restore BUCKET KEY                    PUT the first version's bytes again
    s3_bucket.py delete BUCKET KEY                     DELETE without a version (a delete marker)
    s3_bucket.py drop BUCKET KEY                       DELETE every version and marker of KEY; prints
                                                       `refused N` for each version the server
                                                       kept (Object Lock) and exits 3 if any
    s3_bucket.py put BUCKET KEY TEXT                   PUT an object with TEXT as bytes
"""
import os
import sys

import boto3
from botocore.exceptions import ClientError

# moto (5.2.1) demands Content-MD5 or this header on every PUT to a bucket with Object Lock,
# and ignores x-amz-checksum-sha256 (moto/s3/responses.py, MissingUploadObjectWithObjectLockHeaders).
# boto3 sends it when ChecksumAlgorithm is given.
CHECKSUM = {"ChecksumAlgorithm": "SHA256"}


def client():
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def create(s3, bucket, lock_days):
    if lock_days is None:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        return
    # Object Lock turns versioning on by itself.
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": lock_days}},
        },
    )


def put(s3, bucket, key, body):
    s3.put_object(Bucket=bucket, Key=key, Body=body, **CHECKSUM)


def versions_of(s3, bucket, key):
    """Every version of exactly KEY, newest first (S3's listing order; LastModified has only
    second precision), then its delete markers."""
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    found = [v for v in listing.get("Versions", []) if v["Key"] == key]
    return found + [m for m in listing.get("DeleteMarkers", []) if m["Key"] == key]


def main(argv):
    s3 = client()
    command, bucket = argv[1], argv[2]
    if command == "create":
        create(s3, bucket, None if argv[3] == "--no-lock" else int(argv[4]))
    elif command == "overwrite":
        put(s3, bucket, argv[3], b"not the sealed bytes")
    elif command == "restore":
        listing = s3.list_object_versions(Bucket=bucket, Prefix=argv[3])
        first = [v for v in listing["Versions"] if v["Key"] == argv[3]][-1]
        body = s3.get_object(Bucket=bucket, Key=argv[3], VersionId=first["VersionId"])
        put(s3, bucket, argv[3], body["Body"].read())
    elif command == "delete":
        s3.delete_object(Bucket=bucket, Key=argv[3])
    elif command == "drop":
        refused = 0
        for version in versions_of(s3, bucket, argv[3]):
            try:
                s3.delete_object(
                    Bucket=bucket, Key=argv[3], VersionId=version["VersionId"]
                )
            except ClientError as e:
                refused += 1
                print(f"refused {version['VersionId']}: {e.response['Error']['Code']}")
        return 3 if refused else 0
    elif command == "put":
        put(s3, bucket, argv[3], argv[4].encode())
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
