"""Virtual numbers for OTP reception (document 002): users, operators, numbers,
assignment, OTP extraction from inbound SMS, the otp_received outbox hook."""

from .channels import ChannelMatcher
from .hook import OtpHook
from .service import NumbersService

__all__ = ["ChannelMatcher", "NumbersService", "OtpHook"]
