"""SMPP 3.4: PDU codec, text encoding, receipts, ESME session and SMSC side.

This package knows nothing of the gateway around it and could be published alone.
"""
