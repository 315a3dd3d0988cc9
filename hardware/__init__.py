"""Displays behind one narrow interface: pixel panels (luma.oled, luma.lcd, a
PNG file, the console) take a rendered image; serial displays (Nextion,
ESC/POS) take the frame's content and draw it natively.

A receipt printer is also a printer (``hardware.printer``): it prints a
till's sticker with its own QR command.

``hardware.base`` is the interface; ``hardware.registry.open_display`` builds
a display from a ``--display`` value and ``parse_spec`` checks one without
touching hardware. ``hardware.audio`` is the sound outputs' interface
(``alsa``, ``wav``, ``null``), chosen by an ``--audio`` value the same way
(``parse_audio_spec``). This package imports nothing on its own, so that
``hardware.base`` stays cheap to import.
"""
