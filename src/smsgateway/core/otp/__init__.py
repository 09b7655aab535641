"""OTP projects: projects and their API keys, verifications, custom messages, stats.

The /v1 face (api/otp/) and the admin routes for projects call the services here;
messages go out through the one message pipeline (MessageService.send), devices
through DeviceService (core/devices), both seen through the Protocols in ports.py.
"""
