"""Delivery channels: one module per service behind ``base.Channel``."""

from .base import Channel, ChannelDeps, Message, OutcomeClass, SendResult
from .outcomes import classify_status
from .registry import CHANNEL_TYPES, ChannelType, build_channel, build_channels, channel_problems

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelDeps",
    "ChannelType",
    "Message",
    "OutcomeClass",
    "SendResult",
    "build_channel",
    "build_channels",
    "channel_problems",
    "classify_status",
]
