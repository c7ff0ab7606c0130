"""Creates the IMS documents bucket, queues and topic on a moto server and prints their addresses as JSON.

Usage: python3 tests/support/aws.py http://127.0.0.1:PORT

The events queue redrives to a dead-letter queue after 2 receives and hides a received message
for 1 second (so a poison message reaches the dead-letter queue quickly); the alerts topic fans
out to a subscriber queue with raw delivery, as an integration would subscribe.
"""

import json
import sys

import boto3

endpoint = sys.argv[1]
kw = dict(endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
sqs = boto3.client("sqs", **kw)
s3 = boto3.client("s3", **kw)
s3.create_bucket(Bucket="ims-documents", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
sns = boto3.client("sns", **kw)

dlq = sqs.create_queue(QueueName="ims-events-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
events = sqs.create_queue(
    QueueName="ims-events",
    Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
    },
)["QueueUrl"]
topic = sns.create_topic(Name="ims-alerts")["TopicArn"]
subscriber = sqs.create_queue(QueueName="alerts-subscriber")["QueueUrl"]
subscriber_arn = sqs.get_queue_attributes(QueueUrl=subscriber, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(
    TopicArn=topic,
    Protocol="sqs",
    Endpoint=subscriber_arn,
    Attributes={"RawMessageDelivery": "true"},
)
account, name = events.rstrip("/").split("/")[-2:]
print(json.dumps({
    "queue": f"sqs://sqs.eu-west-1.amazonaws.com/{account}/{name}",
    "queue_http": events,
    "dlq_http": dlq,
    "topic_arn": topic,
    "subscriber_http": subscriber,
}))
