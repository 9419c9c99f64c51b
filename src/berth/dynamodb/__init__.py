"""DynamoDB-compatible tables and DynamoDB Streams on berth's store."""
