"""berth: a self-hosted compute platform speaking the AWS wire protocols."""
