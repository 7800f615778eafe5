//! The picture as SVG: the DOT text laid out by layout-rs, so no Graphviz install is needed.

use layout::{
    backends::svg::SVGWriter,
    core::{
        format::{ClipHandle, RenderBackend},
        geometry::Point,
        style::StyleAttr,
    },
    gv::{DotParser, GraphBuilder},
};

use super::{Picture, dot};
use crate::error::{Error, Result};

/// SVG for `picture`.
pub fn render(picture: &Picture) -> Result<String> {
    let text = dot::render(picture);
    let failed = |message: String| Error::Drawing {
        what: "the lab's graph",
        message,
    };
    let graph = DotParser::new(&text).process().map_err(failed)?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut writer = Bounded::new(SVGWriter::new());
    visual.do_it(false, false, false, &mut writer);
    let svg = writer.inner.finalize();
    Ok(fit_canvas(&svg, writer.max))
}

/// layout-rs's SVG writer sizes the canvas as if every label stood on its end (text
/// length × 10 px high); this wrapper records where things really are drawn instead.
struct Bounded<B> {
    inner: B,
    max: Point,
}

impl<B> Bounded<B> {
    fn new(inner: B) -> Self {
        Bounded {
            inner,
            max: Point::new(0.0, 0.0),
        }
    }

    fn grow(&mut self, x: f64, y: f64) {
        self.max = Point::new(self.max.x.max(x), self.max.y.max(y));
    }
}

impl<B: RenderBackend> RenderBackend for Bounded<B> {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
        clip: Option<ClipHandle>,
    ) {
        self.grow(xy.x + size.x, xy.y + size.y);
        self.inner.draw_rect(xy, size, look, properties, clip);
    }

    fn draw_line(
        &mut self,
        start: Point,
        stop: Point,
        look: &StyleAttr,
        properties: Option<String>,
    ) {
        self.grow(start.x.max(stop.x), start.y.max(stop.y));
        self.inner.draw_line(start, stop, look, properties);
    }

    fn draw_circle(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
    ) {
        self.grow(xy.x + size.x, xy.y + size.y);
        self.inner.draw_circle(xy, size, look, properties);
    }

    fn draw_text(&mut self, xy: Point, text: &str, look: &StyleAttr) {
        // Centred on xy, one line per font size; about 0.6 em per character.
        let font = px(look.font_size);
        let lines = px(text.lines().count());
        let widest = px(text.lines().map(str::len).max().unwrap_or(0));
        self.grow(xy.x + widest * font * 0.3, xy.y + lines * font / 2.0 + font);
        self.inner.draw_text(xy, text, look);
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        look: &StyleAttr,
        properties: Option<String>,
        text: &str,
    ) {
        for (a, b) in path {
            self.grow(a.x.max(b.x), a.y.max(b.y) + px(look.font_size));
        }
        self.inner
            .draw_arrow(path, dashed, head, look, properties, text);
    }

    fn create_clip(&mut self, xy: Point, size: Point, rounded_px: usize) -> ClipHandle {
        self.inner.create_clip(xy, size, rounded_px)
    }
}

/// A count as pixels (counts here are small).
fn px(count: usize) -> f64 {
    f64::from(u32::try_from(count).unwrap_or(u32::MAX))
}

/// `svg` with its canvas set to what is drawn (`max`, plus a margin).
fn fit_canvas(svg: &str, max: Point) -> String {
    let (width, height) = (max.x.ceil() + 10.0, max.y.ceil() + 10.0);
    let Some(start) = svg.find("<svg ") else {
        return svg.to_owned();
    };
    let Some(end) = svg[start..].find('>').map(|e| start + e) else {
        return svg.to_owned();
    };
    format!(
        "{}<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\"{}",
        &svg[..start],
        &svg[end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{graph::tests::default_picture, nat::BackendKind};

    #[test]
    fn the_svg_names_every_namespace_and_program_on_a_canvas_that_fits() {
        let svg = render(&default_picture(BackendKind::Ebpf)).expect("svg");
        for text in [
            "netns demo-host",
            "netns demo-wan",
            "ceth0 172.18.0.10/16",
            "netlab_nat_ext_ingress",
            "-p 5000:5000/tcp",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        let height: f64 = svg
            .split("height=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|h| h.parse().ok())
            .expect("a height");
        assert!((100.0..800.0).contains(&height), "canvas {height} px high");
    }
}
