"""DynamoDB and DynamoDB Streams through the AWS CLI, as a user types it."""
from __future__ import annotations

import json
from typing import Any

from berth_process import BerthProcess


def test_cli_session(berth: BerthProcess) -> None:
    def aws(*args: str) -> Any:
        out = berth.aws_cli(*args).stdout
        return json.loads(out) if out.strip() else None

    created = aws("dynamodb", "create-table", "--table-name", "cli-music",
                  "--attribute-definitions", "AttributeName=Artist,AttributeType=S",
                  "AttributeName=Song,AttributeType=S",
                  "--key-schema", "AttributeName=Artist,KeyType=HASH",
                  "AttributeName=Song,KeyType=RANGE", "--billing-mode", "PAY_PER_REQUEST",
                  "--stream-specification", "StreamEnabled=true,StreamViewType=NEW_IMAGE")
    assert created["TableDescription"]["TableStatus"] == "CREATING"
    aws("dynamodb", "wait", "table-exists", "--table-name", "cli-music")
    for song, year in (("Call Me Today", "2001"), ("Happy Day", "2003"), ("PartiQL", "2021")):
        aws("dynamodb", "put-item", "--table-name", "cli-music", "--item", json.dumps({
            "Artist": {"S": "No One You Know"}, "Song": {"S": song}, "Year": {"N": year}}))
    got = aws("dynamodb", "get-item", "--table-name", "cli-music", "--key",
              '{"Artist": {"S": "No One You Know"}, "Song": {"S": "Happy Day"}}')
    assert got["Item"]["Year"] == {"N": "2003"}
    found = aws("dynamodb", "query", "--table-name", "cli-music", "--key-condition-expression",
                "Artist = :a AND begins_with(Song, :p)", "--expression-attribute-values",
                '{":a": {"S": "No One You Know"}, ":p": {"S": "Ha"}}')
    assert [i["Song"]["S"] for i in found["Items"]] == ["Happy Day"]
    updated = aws("dynamodb", "update-item", "--table-name", "cli-music", "--key",
                  '{"Artist": {"S": "No One You Know"}, "Song": {"S": "PartiQL"}}',
                  "--update-expression", "SET #y = #y + :one", "--expression-attribute-names",
                  '{"#y": "Year"}', "--expression-attribute-values", '{":one": {"N": "1"}}',
                  "--return-values", "UPDATED_NEW")
    assert updated["Attributes"] == {"Year": {"N": "2022"}}
    # The CLI pages through Scan by itself, two items a page.
    scanned = aws("dynamodb", "scan", "--table-name", "cli-music", "--page-size", "2")
    assert scanned["Count"] == 3
    failed = berth.aws_cli("dynamodb", "put-item", "--table-name", "cli-music", "--item",
                           '{"Artist": {"S": "x"}, "Song": {"S": "y"}}',
                           "--condition-expression", "attribute_exists(Artist)", check=False)
    assert failed.returncode != 0
    assert "ConditionalCheckFailedException" in failed.stderr
    stream = aws("dynamodbstreams", "list-streams", "--table-name", "cli-music")["Streams"][0]
    shard = aws("dynamodbstreams", "describe-stream", "--stream-arn", stream["StreamArn"])[
        "StreamDescription"]["Shards"][0]["ShardId"]
    iterator = aws("dynamodbstreams", "get-shard-iterator", "--stream-arn", stream["StreamArn"],
                   "--shard-id", shard, "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
    records = aws("dynamodbstreams", "get-records", "--shard-iterator", iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "INSERT", "MODIFY"]
    assert records[-1]["dynamodb"]["NewImage"]["Year"] == {"N": "2022"}
    aws("dynamodb", "delete-table", "--table-name", "cli-music")
    aws("dynamodb", "wait", "table-not-exists", "--table-name", "cli-music")
    assert "cli-music" not in aws("dynamodb", "list-tables")["TableNames"]
