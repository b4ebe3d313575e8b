"""The Telegram runtime: inbox, update processing, polling, webhook, outgoing messages."""
