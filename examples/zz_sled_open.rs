fn main() {
    let p = std::env::args().nth(1).unwrap();
    let db = sled::Config::new().path(&p).cache_capacity(256 << 20).mode(sled::Mode::HighThroughput).open().unwrap();
    let (mut ids, mut sv, mut streams, mut other) = (0u64, 0u64, 0u64, 0u64);
    let mut last: Vec<u8> = Vec::new();
    let mut hist = std::collections::BTreeMap::<u64, u64>::new();
    let mut cur = 0u64;
    for kv in db.iter() {
        let (k, _) = kv.unwrap();
        match k[0] {
            b'i' => ids += 1,
            b's' => {
                sv += 1;
                let s = &k[..k.len() - 9];
                if s != &last[..] {
                    if cur > 0 {
                        *hist.entry(cur.next_power_of_two()).or_default() += 1;
                    }
                    streams += 1;
                    last = s.to_vec();
                    cur = 0;
                }
                cur += 1;
            }
            _ => other += 1,
        }
    }
    *hist.entry(cur.next_power_of_two()).or_default() += 1;
    eprintln!("ids {ids} stream-versions {sv} streams {streams} other {other}");
    eprintln!("{hist:?}");
}
