use super::*;
use crate::tui::app::{Grid, RunData};
use crate::tui::fixtures;

#[test]
fn tiles_scale_up_by_a_whole_factor_that_fits_them_all() {
    assert_eq!(integer_layout(4, (2, 2), (20, 20), 2), (4, 2, 2), "8 px tiles, 2 x 2 with 2 px gaps in 20 px");
    assert_eq!(integer_layout(64, (28, 28), (640, 400), 2), (2, 11, 6), "56 px tiles: 11 columns, 6 rows");
    assert_eq!(integer_layout(64, (28, 28), (640, 320), 2), (1, 21, 4), "5 rows of 56 px hold 55: back to 28 px");
    assert_eq!(integer_layout(3, (10, 10), (5, 5), 2), (1, 1, 0), "nothing fits: scale 1, as many as fit");
}

#[test]
fn the_grid_image_is_nearest_neighbour_with_black_gaps() {
    let grid = SampleGrid { n: 2, h: 1, w: 1, c: 1, images: vec![0, 255] };
    let img = grid_image(&grid, (10, 5)).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (10, 4), "two 4x4 tiles and a 2 px gap");
    assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(9, 3).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(6, 2).0, [255, 255, 255], "every pixel of a tile is its one source pixel");
    assert_eq!(img.get_pixel(4, 0).0, [0, 0, 0], "gap");
    assert!(grid_image(&SampleGrid { n: 2, h: 1, w: 1, c: 1, images: vec![0] }, (10, 5)).is_none(), "short data");
}

/// The dashboard of a run with samples, drawn with images of `protocol`; the buffer's text.
fn drawn_with(protocol: ProtocolType) -> String {
    let mut picker = Picker::halfblocks();
    picker.set_protocol_type(protocol);
    let mut images = Images::new(picker);
    let mut app = fixtures::viewer(50);
    app.graphics = images.active();
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    terminal
        .draw(|f| {
            crate::tui::render::draw(f, &app);
            images.draw(f, &app);
        })
        .unwrap();
    let buf = terminal.backend().buffer();
    buf.content().iter().map(|c| c.symbol()).collect()
}

#[test]
fn each_protocol_writes_its_escape_sequence_over_the_sample_grid() {
    let kitty = drawn_with(ProtocolType::Kitty);
    assert!(kitty.contains("\x1b_Gq=2,i=") && kitty.contains("a=T"), "kitty transmits the image");
    let sixel = drawn_with(ProtocolType::Sixel);
    assert!(sixel.contains("\x1bP") && sixel.contains('q'), "a sixel DCS sequence");
    let iterm = drawn_with(ProtocolType::Iterm2);
    assert!(iterm.contains("\x1b]1337;File=inline=1"), "an iTerm2 inline image");
    let half = drawn_with(ProtocolType::Halfblocks);
    assert!(!half.contains('\x1b') && half.contains('▀'), "half-blocks only");
}

#[test]
fn images_are_encoded_once_per_grid_and_size() {
    let mut picker = Picker::halfblocks();
    picker.set_protocol_type(ProtocolType::Kitty);
    let mut images = Images::new(picker);
    let mut app = fixtures::viewer(50);
    app.graphics = true;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    for _ in 0..3 {
        terminal
            .draw(|f| {
                crate::tui::render::draw(f, &app);
                images.draw(f, &app);
            })
            .unwrap();
    }
    assert_eq!(images.cache.len(), 1, "one grid on screen, encoded once");
    // a newer grid replaces the cached one
    let mut run: RunData = app.runs[0].clone();
    run.record_samples(Grid { step: 999, grid: fixtures::disks(4, 16, 9) });
    app.runs[0] = run;
    terminal
        .draw(|f| {
            crate::tui::render::draw(f, &app);
            images.draw(f, &app);
        })
        .unwrap();
    assert_eq!(images.cache.keys().map(|k| k.step).collect::<Vec<_>>(), vec![999]);
}

#[test]
fn graphics_names_parse() {
    assert_eq!("Kitty".parse::<Graphics>(), Ok(Graphics::Kitty));
    assert_eq!("none".parse::<Graphics>(), Ok(Graphics::Halfblocks));
    assert!("svg".parse::<Graphics>().unwrap_err().contains("auto, kitty"));
}

#[test]
fn the_terminal_reply_decides_the_protocol_and_cell_size() {
    // kitty: answers the graphics query, reports 20x10 px cells, and the status
    let kitty = "\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[?62;22c\x1b[0n";
    assert_eq!(read_reply(kitty, false), Some((ProtocolType::Kitty, Some((10, 20)))));
    // xterm -ti vt340: sixel in its device attributes, no kitty
    assert_eq!(read_reply("\x1b[?63;1;2;4;6;9;15;22c\x1b[6;16;8t\x1b[0n", false), Some((ProtocolType::Sixel, Some((8, 16)))));
    // a plain terminal: only the status report (iTerm2 when the environment says so)
    assert_eq!(read_reply("\x1b[?1;2c\x1b[0n", false), Some((ProtocolType::Halfblocks, None)));
    assert_eq!(read_reply("\x1b[0n", true), Some((ProtocolType::Iterm2, None)));
    // not complete until the status report arrives
    assert_eq!(read_reply("\x1b_Gi=31;OK\x1b\\", false), None);
}
