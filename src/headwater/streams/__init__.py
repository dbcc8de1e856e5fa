"""headwater.streams."""
