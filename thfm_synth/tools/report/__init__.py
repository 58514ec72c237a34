"""A static HTML dataset card of a render output or a shard set: `write_report(path, out_html)`."""

from thfm_synth.tools.report.card import collect, render_html, write_report

__all__ = ["collect", "render_html", "write_report"]
