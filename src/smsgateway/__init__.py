"""smsgateway: an SMS gateway with SMPP 3.4 links."""

__version__ = "0.1.0"
