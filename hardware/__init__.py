"""Displays behind one narrow interface: pixel panels (luma.oled, luma.lcd, a
PNG file, the console) take a rendered image; serial displays (Nextion,
ESC/POS) take the frame's content and draw it natively."""
