use super::*;

#[test]
fn a_python2_cifar_batch_reads_as_data() {
    let data: Vec<u8> = (0..24).collect();
    let v = parse(&python2_cifar_batch(&data, 2, &[6, 9])).unwrap();
    let (shape, bytes) = numpy_u8(v.get("data").unwrap()).unwrap();
    assert_eq!((shape, bytes), (vec![2, 12], &data[..]));
    assert_eq!(v.get("labels"), Some(&Value::List(vec![Value::Int(6), Value::Int(9)])));
    assert_eq!(v.get("batch_label").and_then(Value::as_text), Some("testing batch 1 of 1"));
    let Some(Value::List(names)) = v.get("filenames") else { panic!("filenames") };
    assert_eq!(names.len(), 2, "BINGET repeats a memoised value");
}

#[test]
fn python3_forms_read_too() {
    // protocol 2 from Python 3: bytes as _codecs.encode(str, "latin1"); str keys as BINUNICODE
    let p = b"\x80\x02}q\x00X\x01\x00\x00\x00kq\x01c_codecs\nencode\nq\x02X\x05\x00\x00\x00\xc3\xbf\x01abq\x03X\x06\x00\x00\x00latin1q\x04\x86q\x05Rq\x06s.";
    assert_eq!(parse(p).unwrap().get("k"), Some(&Value::Bytes(vec![0xff, 1, b'a', b'b'])));
    // protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, SHORT_BINBYTES, LONG1, floats, bools
    let p = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94C\x02xy\x94\x8c\x01b\x94\x8a\x02\x00\xff\x8c\x01c\x94G?\xf8\x00\x00\x00\x00\x00\x00\x8c\x01d\x88\x8c\x01e\x8c\x05numpy\x8c\x05dtype\x93\x94u.";
    let v = parse(p).unwrap();
    assert_eq!(v.get("a"), Some(&Value::Bytes(b"xy".to_vec())));
    assert_eq!(v.get("b"), Some(&Value::Int(-256)));
    assert_eq!(v.get("c"), Some(&Value::Float(1.5)));
    assert_eq!(v.get("d"), Some(&Value::Bool(true)));
    assert_eq!(v.get("e"), Some(&Value::Global("numpy".into(), "dtype".into())));
}

#[test]
fn broken_and_hostile_pickles_are_errors() {
    let good = python2_cifar_batch(&[1; 24], 2, &[0, 1]);
    for cut in 0..good.len() {
        assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
    }
    let e = parse(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.").unwrap();
    assert!(
        matches!(e, Value::Object { ref class, .. } if class == &("os".to_string(), "system".to_string())),
        "a call is recorded, not made"
    );
    assert!(parse(b"\x80\x02T\xff\xff\xff\x7f.").unwrap_err().contains("cut short"), "a length past the input");
    let deep = [b"\x80\x02".to_vec(), vec![b']'; 200], vec![b'a'; 199], b".".to_vec()].concat();
    assert!(parse(&deep).unwrap_err().contains("nested deeper"));
    assert!(parse(b"\x80\x02h\x05.").unwrap_err().contains("memo key 5"));
    assert!(parse(b"\x80\x02K\x01\xff.").unwrap_err().contains("opcode 0xff"));
    let wrong = parse(&python2_cifar_batch(&[1; 23], 2, &[0, 1])).unwrap();
    assert!(numpy_u8(wrong.get("data").unwrap()).unwrap_err().contains("bytes of data"));
}
