"""Delivery channels: one module per service behind ``base.Channel``."""

from .base import Channel, ChannelDeps, Message, OutcomeClass, SendResult, classify_status
from .registry import CHANNEL_TYPES, build_channel, build_channels, channel_problems

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelDeps",
    "Message",
    "OutcomeClass",
    "SendResult",
    "build_channel",
    "build_channels",
    "channel_problems",
    "classify_status",
]
