"""Any OpenAI client gets TPO-optimized replies from `tpo serve` (or `langgraph dev`)."""

import os

from openai import OpenAI

client = OpenAI(base_url=os.environ.get("TPO_URL", "http://127.0.0.1:8100/v1"), api_key="-")
reply = client.chat.completions.create(model="tpo", messages=[{"role": "user", "content": "Hi!"}])
print(reply.choices[0].message.content, reply.tpo["score"])
